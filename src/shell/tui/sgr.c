#include "shell/tui/sgr.h"

#include <string.h>

#define ESC 0x1b
#define SGR_PARAMS_MAX 32

void sgr_reset(sgr_style *st)
{
    memset(st, 0, sizeof *st);
    st->fg = st->bg = -1;
}

int sgr_nearest_rgb(int r, int g, int b)
{
    /* Each channel on or off at half: red 1, green 2, blue 4 as in curses. */
    return (r >= 128 ? 1 : 0) | (g >= 128 ? 2 : 0) | (b >= 128 ? 4 : 0);
}

int sgr_nearest_256(int index, bool *bright)
{
    *bright = false;
    if (index < 0 || index > 255)
        return -1;
    if (index < 8)
        return index;
    if (index < 16) {
        *bright = true;
        return index - 8;
    }
    if (index < 232) { /* the 6x6x6 cube: levels 0, 95, 135, 175, 215, 255 */
        int i = index - 16, level[6] = {0, 95, 135, 175, 215, 255};
        return sgr_nearest_rgb(level[i / 36], level[(i / 6) % 6], level[i % 6]);
    }
    return index - 232 < 12 ? 0 : 7; /* the grey ramp: dark or light */
}

/* 38/48 followed by 5;n or 2;r;g;b: the colour, and how many parameters it
 * took after the 38/48; -1 colour when it does not parse. */
static int extended_colour(const int *p, int n, int *used, bool *bright)
{
    *bright = false;
    *used = 0;
    if (n >= 2 && p[0] == 5) {
        *used = 2;
        return sgr_nearest_256(p[1], bright);
    }
    if (n >= 4 && p[0] == 2) {
        *used = 4;
        return sgr_nearest_rgb(p[1], p[2], p[3]);
    }
    *used = n; /* malformed: the rest of the list means nothing */
    return -1;
}

static void apply_one(sgr_style *st, const int *p, int n, int *i)
{
    int v = p[*i];
    bool bright = false;
    if (v == 0) {
        sgr_reset(st);
    } else if (v == 1) {
        st->bold = true;
    } else if (v == 2) {
        st->dim = true;
    } else if (v == 3) {
        st->italic = true;
    } else if (v == 4) {
        st->underline = true;
    } else if (v == 7) {
        st->reverse = true;
    } else if (v == 22) {
        st->bold = st->dim = false;
    } else if (v == 23) {
        st->italic = false;
    } else if (v == 24) {
        st->underline = false;
    } else if (v == 27) {
        st->reverse = false;
    } else if (v >= 30 && v <= 37) {
        st->fg = v - 30;
    } else if (v >= 90 && v <= 97) {
        st->fg = v - 90;
        st->bold = true; /* bright: as near as 8 colours come */
    } else if (v == 39) {
        st->fg = -1;
    } else if ((v >= 40 && v <= 47) || (v >= 100 && v <= 107)) {
        st->bg = v % 10;
    } else if (v == 49) {
        st->bg = -1;
    } else if (v == 38 || v == 48) {
        int used;
        int c = extended_colour(p + *i + 1, n - *i - 1, &used, &bright);
        *i += used;
        if (v == 38 && c >= 0) {
            st->fg = c;
            st->bold |= bright;
        } else if (v == 48 && c >= 0) {
            st->bg = c;
        }
    }
}

void sgr_apply(sgr_style *st, const char *params, size_t len)
{
    int p[SGR_PARAMS_MAX], n = 0;
    long cur = 0;
    bool any = false;
    for (size_t k = 0; k <= len && n < SGR_PARAMS_MAX; k++) {
        char c = k < len ? params[k] : ';';
        if (c >= '0' && c <= '9') {
            cur = cur < 100000 ? cur * 10 + (c - '0') : cur;
            any = true;
        } else if (c == ';' || c == ':') {
            p[n++] = any ? (int)cur : 0; /* an empty parameter is 0 */
            cur = 0;
            any = false;
        } else {
            return; /* a private or intermediate byte: not a plain SGR */
        }
    }
    for (int i = 0; i < n; i++)
        apply_one(st, p, n, &i);
}

/* ESC [ params final: the whole length; the style changes when final is 'm'. */
static size_t csi(const char *s, size_t len, sgr_style *st)
{
    size_t k = 2;
    while (k < len && (unsigned char)s[k] >= 0x20 && (unsigned char)s[k] <= 0x3f)
        k++; /* parameter and intermediate bytes */
    if (k >= len)
        return len; /* cut off at the end of the text */
    if (s[k] == 'm')
        sgr_apply(st, s + 2, k - 2);
    return k + 1;
}

/* ESC ] ... BEL or ESC \: skipped whole (a title or hyperlink). */
static size_t osc(const char *s, size_t len)
{
    for (size_t k = 2; k < len; k++) {
        if (s[k] == 0x07)
            return k + 1;
        if (s[k] == ESC && k + 1 < len && s[k + 1] == '\\')
            return k + 2;
    }
    return len;
}

size_t sgr_next(const char *s, size_t len, sgr_style *st, sgr_token *kind)
{
    unsigned char c = (unsigned char)s[0];
    *kind = SGR_ESCAPE;
    if (c == '\n') {
        *kind = SGR_NEWLINE;
        return 1;
    }
    if (c == ESC) {
        if (len >= 2 && s[1] == '[')
            return csi(s, len, st);
        if (len >= 2 && s[1] == ']')
            return osc(s, len);
        /* ESC, intermediate bytes (ESC ( B and the like), a final byte. */
        size_t k = 1;
        while (k < len && s[k] >= 0x20 && s[k] <= 0x2f)
            k++;
        return k < len ? k + 1 : len;
    }
    if (c < 0x20 || c == 0x7f)
        return 1; /* \r, \t and the like: nothing to draw */
    size_t k = 1;
    while (k < len && ((unsigned char)s[k] >= 0x20 && s[k] != 0x7f))
        k++;
    *kind = SGR_TEXT;
    return k;
}
