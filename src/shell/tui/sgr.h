/* The SGR escapes in a peek's text (tmux capture-pane -e, SPEC 16) read into
 * a style: bold, dim, italic, underline, reverse and the 8 basic colours;
 * bright, 256-colour and truecolour map to the nearest basic colour (bright
 * foregrounds also turn bold). Every other escape sequence is skipped. No
 * curses here, so it is unit-tested. */
#ifndef CONVOCATE_SHELL_TUI_SGR_H
#define CONVOCATE_SHELL_TUI_SGR_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int fg, bg; /* -1 the terminal's default, else 0..7 (black red green yellow blue magenta cyan
                   white) */
    bool bold, dim, italic, underline, reverse;
} sgr_style;

typedef enum {
    SGR_TEXT,    /* printable text to draw in the current style */
    SGR_NEWLINE, /* '\n' */
    SGR_ESCAPE   /* an escape sequence, applied when it was SGR */
} sgr_token;

void sgr_reset(sgr_style *st);
/* Applies one SGR parameter list (the bytes between "ESC [" and "m"). */
void sgr_apply(sgr_style *st, const char *params, size_t len);
/* Reads the next token of s[0..len) (len > 0): sets *kind and returns its
 * length in bytes (at least 1). A text token stops before ESC, '\n' and other
 * control bytes; lone control bytes come back as empty SGR_ESCAPE tokens. */
size_t sgr_next(const char *s, size_t len, sgr_style *st, sgr_token *kind);
/* The nearest of the 8 basic colours for an xterm 256-colour index or an
 * RGB triple; *bright set for the upper half of the 16 basic ones. */
int sgr_nearest_256(int index, bool *bright);
int sgr_nearest_rgb(int r, int g, int b);

#endif
