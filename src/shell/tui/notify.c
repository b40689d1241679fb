#include "shell/tui/notify.h"

#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/paths.h"

#define CONF_MAX 4096

/* The directory of tui.conf; -1 without XDG_CONFIG_HOME or HOME. */
static int conf_dir(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, size, "%s/convocate", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(out, size, "%s/.config/convocate", home);
    else
        return -1;
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

bool notify_load(void)
{
    char dir[PATH_BUF], path[PATH_BUF + 16], *text = NULL;
    if (conf_dir(dir, sizeof dir) < 0)
        return true;
    snprintf(path, sizeof path, "%s/tui.conf", dir);
    if (read_file_bounded(path, CONF_MAX, &text, NULL) < 0)
        return true;
    bool on = true;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strcmp(line, "notify=off") == 0)
            on = false;
        else if (strcmp(line, "notify=on") == 0)
            on = true;
    free(text);
    return on;
}

int notify_save(bool on, char *err, size_t errlen)
{
    char dir[PATH_BUF], path[PATH_BUF + 16];
    if (conf_dir(dir, sizeof dir) < 0) {
        snprintf(err, errlen, "cannot save the setting: neither XDG_CONFIG_HOME nor HOME is set");
        return -1;
    }
    snprintf(path, sizeof path, "%s/tui.conf", dir);
    /* ~/.config may not exist yet either. */
    char parent[PATH_BUF];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        mkdir(parent, 0700);
    }
    const char *line = on ? "notify=on\n" : "notify=off\n";
    if ((mkdir(dir, 0700) < 0 && errno != EEXIST) ||
        atomic_write_file(path, line, strlen(line), 0600, KEEP_OWNER, KEEP_OWNER) < 0) {
        snprintf(err, errlen, "cannot save %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Whether the session was waiting in the copy before (O(1) by its index). */
static bool was_waiting(const tui_snapshot *before, const tui_table *index, const tui_row *row,
                        bool *seen)
{
    size_t i = table_find(index, before, row->uuid);
    *seen = i != TABLE_NONE;
    return *seen && activity_is_waiting(&before->rows[i].activity);
}

/* Only printable ASCII goes into the escape sequence: a name can never end
 * it early or start another. */
static void queue_osc(tui_app *app, const tui_row *row)
{
    char text[300];
    snprintf(text, sizeof text, "convocate: %s on %s is waiting", row->name, row->agent);
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    size_t len = strlen(app->osc_out);
    snprintf(app->osc_out + len, sizeof app->osc_out - len, "\033]9;%s\007", text);
}

static void ring(tui_app *app, const tui_row *row)
{
    if (!app->notify_on)
        return;
    /* One bell for all that turned waiting since the last draw. */
    bool first = app->osc_out[0] == '\0';
    queue_osc(app, row);
    if (first)
        beep();
}

void notify_transitions(tui_app *app, const tui_snapshot *before, const tui_table *index)
{
    for (size_t i = 0; i < app->snap.n_rows; i++) {
        const tui_row *row = &app->snap.rows[i];
        bool seen;
        if (!activity_is_waiting(&row->activity) || row->activity_unknown)
            continue;
        /* A session first seen waiting (the TUI just started) is no transition. */
        if (was_waiting(before, index, row, &seen) || !seen)
            continue;
        ring(app, row);
    }
}

void notify_row(tui_app *app, const tui_row *row, const tui_activity *was)
{
    if (activity_is_waiting(&row->activity) && !row->activity_unknown && !activity_is_waiting(was))
        ring(app, row);
}

void notify_flush(tui_app *app)
{
    size_t len = strlen(app->osc_out);
    if (len == 0)
        return;
    /* Between refreshes curses has flushed everything: an OSC moves no
     * cursor, so writing it straight to the terminal leaves the screen as
     * curses believes it is. */
    fflush(stdout);
    if (write_all(STDOUT_FILENO, app->osc_out, len) < 0) {
        /* the terminal is gone: the next read ends the TUI */
    }
    app->osc_out[0] = '\0';
}
