#include "shell/tui/text.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Decodes one character; invalid bytes come out as '?' one byte long. */
static size_t next_char(const char *s, wchar_t *wc, mbstate_t *st)
{
    size_t n = mbrtowc(wc, s, MB_CUR_MAX, st);
    if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
        memset(st, 0, sizeof *st);
        *wc = L'?';
        return 1;
    }
    return n;
}

static int char_width(wchar_t wc)
{
    if (wc < 0x20 || wc == 0x7f)
        return -1; /* control characters are never drawn */
    int w = wcwidth(wc);
    return w < 0 ? 1 : w;
}

int text_width(const char *s)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    int total = 0;
    while (*s) {
        wchar_t wc;
        s += next_char(s, &wc, &st);
        int w = char_width(wc);
        total += w < 0 ? 0 : w;
    }
    return total;
}

/* Draws the characters of [s, end) at the cursor, up to width display
 * columns (a wide character that would not fit is left out); returns the
 * columns used. */
static int put_chars(const char *s, const char *end, int width)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    int used = 0;
    while (s < end && *s) {
        wchar_t wc;
        s += next_char(s, &wc, &st);
        int w = char_width(wc);
        if (w < 0)
            continue;
        if (used + w > width)
            break;
        wchar_t one[2] = {wc, L'\0'};
        addnwstr(one, 1);
        used += w;
    }
    return used;
}

void text_put(int y, int x, int width, const char *s, attr_t attr)
{
    if (width <= 0)
        return;
    attr_t old_attr;
    short old_pair;
    attr_get(&old_attr, &old_pair, NULL);
    attron(attr);
    move(y, x);
    int used = put_chars(s, s + strlen(s), width);
    for (; used < width; used++)
        addch(' ');
    attr_set(old_attr, old_pair, NULL);
}

void text_drop_last(char *s)
{
    size_t len = strlen(s);
    if (len == 0)
        return;
    /* Step back over UTF-8 continuation bytes (10xxxxxx) to the lead byte. */
    size_t i = len - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    s[i] = '\0';
}

int text_append_wchar(char *s, size_t size, wint_t wc)
{
    char buf[MB_LEN_MAX];
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t n = wcrtomb(buf, (wchar_t)wc, &st);
    size_t len = strlen(s);
    if (n == (size_t)-1 || len + n + 1 > size)
        return 0;
    memcpy(s + len, buf, n);
    s[len + n] = '\0';
    return 1;
}

void text_box(int y, int x, int h, int w, const char *title)
{
    for (int r = 0; r < h; r++)
        text_put(y + r, x, w, "", A_NORMAL);
    attron(A_BOLD);
    mvhline(y, x + 1, ACS_HLINE, w - 2);
    mvhline(y + h - 1, x + 1, ACS_HLINE, w - 2);
    mvvline(y + 1, x, ACS_VLINE, h - 2);
    mvvline(y + 1, x + w - 1, ACS_VLINE, h - 2);
    mvaddch(y, x, ACS_ULCORNER);
    mvaddch(y, x + w - 1, ACS_URCORNER);
    mvaddch(y + h - 1, x, ACS_LLCORNER);
    mvaddch(y + h - 1, x + w - 1, ACS_LRCORNER);
    attroff(A_BOLD);
    if (title && *title && w > 8) {
        char framed[240];
        snprintf(framed, sizeof framed, " %s ", title);
        int tw = text_width(framed);
        text_put(y, x + 2, tw < w - 4 ? tw : w - 4, framed, A_BOLD);
    }
}

int text_put_run(int y, int x, int width, const char *s, size_t len, attr_t attr)
{
    attr_t old_attr;
    short old_pair;
    attr_get(&old_attr, &old_pair, NULL);
    attr_set(attr, PAIR_NUMBER(attr), NULL);
    move(y, x);
    int used = put_chars(s, s + len, width);
    attr_set(old_attr, old_pair, NULL);
    return used;
}

const char *text_tail(const char *s, int width)
{
    int total = text_width(s);
    mbstate_t st;
    memset(&st, 0, sizeof st);
    while (total > width && *s) {
        wchar_t wc;
        s += next_char(s, &wc, &st);
        int w = char_width(wc);
        total -= w < 0 ? 0 : w;
    }
    return s;
}

size_t text_fit(const char *s, int width)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    const char *start = s;
    int used = 0;
    while (*s) {
        wchar_t wc;
        size_t n = next_char(s, &wc, &st);
        int w = char_width(wc);
        if (w > 0 && used + w > width)
            break;
        used += w > 0 ? w : 0;
        s += n;
    }
    return (size_t)(s - start);
}
