/* UTF-8 text on the curses screen by display columns, not bytes, so names
 * with wide or combining characters never break the table's alignment. */
#ifndef CONVOCATE_SHELL_TUI_TEXT_H
#define CONVOCATE_SHELL_TUI_TEXT_H

#include <curses.h>
#include <stddef.h>

/* Draws s at (y, x) in at most width columns, padding with spaces to width. */
void text_put(int y, int x, int width, const char *s, attr_t attr);
/* Draws the first len bytes of s at (y, x) in at most width columns, no
 * padding; returns the columns used. attr may carry a colour pair. */
int text_put_run(int y, int x, int width, const char *s, size_t len, attr_t attr);
/* How many bytes of s fit in width columns (whole characters). */
size_t text_fit(const char *s, int width);
/* The end of s that fits in width columns. */
const char *text_tail(const char *s, int width);
/* Display columns s takes (invalid bytes count one each). */
int text_width(const char *s);
/* Removes the last character (not byte) of a UTF-8 string. */
void text_drop_last(char *s);
/* Appends the wide character wc as UTF-8 if it fits in size; false if not. */
int text_append_wchar(char *s, size_t size, wint_t wc);

/* Clears an h x w area at (y, x) and frames it, with title in the top edge. */
void text_box(int y, int x, int h, int w, const char *title);

#endif
