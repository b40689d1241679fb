/* The TUI's whole state, owned by the UI thread. Worker threads never touch
 * it: they talk through the model, the job list and the notify pipe. */
#ifndef CONVOCATE_SHELL_TUI_APP_H
#define CONVOCATE_SHELL_TUI_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ssh/registry.h"
#include "shell/tui/form.h"
#include "shell/tui/jobs.h"
#include "shell/tui/model.h"
#include "shell/tui/table.h"

typedef enum {
    MODE_TABLE,
    MODE_CONFIRM,
    MODE_FORM,
    MODE_PICKER,
    MODE_SETTINGS,
    MODE_SEND,          /* the > prompt: a line typed into a session (SPEC 16) */
    MODE_SETTINGS_EDIT, /* the settings dialog's KEY=VALUE line for one agent */
    MODE_FILTER         /* the / prompt: the table narrows as it is typed */
} tui_mode;

#define SEND_TEXT_MAX 4096 /* the send op's limit (SPEC 7) */
#define PREVIEW_AUTO_COLS 160

/* The preview pane (SPEC 16): the selected session's screen by peek. */
typedef struct {
    int pref;           /* -1 automatic (shown from PREVIEW_AUTO_COLS on), 0 off, 1 on */
    char uuid[40];      /* the session that screen or error belongs to */
    char *screen;       /* owned: the last peek's text with its SGR escapes */
    char error[512];    /* the agent's refusal, shown verbatim instead */
    unsigned job_id;    /* the peek in flight, 0 when none */
    long last_asked_ms; /* monotonic time of the last peek sent */
} tui_preview;

/* The > prompt. */
typedef struct {
    char text[SEND_TEXT_MAX + 1];
    tui_row row; /* the session it goes to, as selected when > was pressed */
} tui_send;

/* The settings dialog's editor: KEY=VALUE words for one agent's
 * settings-set (SPEC 7), typed as `convocate settings` types them. */
typedef struct {
    char text[512];
    char agent[AGENT_ID_LEN + 1];
} tui_settings_edit;

typedef struct {
    char op[16]; /* the RPC op to run once confirmed */
    char question[300];
    char running[200]; /* "killing web..." */
    tui_row row;
} tui_confirm;

typedef struct {
    unsigned job_id; /* the ping of every agent, 0 once answered */
    tui_job *answer; /* owned; NULL until the ping comes back */
} tui_settings;

/* What the screen showed after the last draw, so the next draw writes only
 * the table lines whose content or highlight changed (curses then sends
 * only the cells that differ). Anything that may have drawn over the table
 * (a dialog, a resize) changes the layout and invalidates it. */
typedef struct {
    bool valid;
    int lines, cols, mode, table_width, table_height;
    char **keys; /* per table line: the text and attributes drawn there */
    int n_keys;
} tui_frame;

typedef struct {
    agent_registry reg;
    tui_model *model;
    tui_jobs *jobs;
    int notify_pipe[2];
    int feed_fd; /* the status feed, -1 while not connected */
    tui_snapshot snap;
    tui_table table; /* snap's index, the / filter and the rows it shows */
    size_t selected; /* position among the shown rows (table.shown) */
    size_t top;      /* first shown row on screen */
    char selected_uuid[40];
    tui_mode mode;
    tui_confirm confirm;
    tui_form form;
    size_t picker_selected;
    tui_settings settings;
    tui_preview preview;
    tui_send send;
    tui_settings_edit settings_edit;
    bool notify_on;     /* bell + OSC 9 when a session turns waiting (tui.conf) */
    char osc_out[1024]; /* notifications to write to the terminal after the next refresh */
    char status[700];
    bool status_is_error;
    tui_frame frame;
    FILE *timing; /* CONVOCATE_TUI_TIMING: one line per draw, for the bench */
    bool quit;
} tui_app;

void app_status(tui_app *app, bool is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The selected row, or NULL when the table (as filtered) is empty. */
const tui_row *app_selected(const tui_app *app);
/* The row at a position among the shown rows (pos < table.n_shown). */
const tui_row *app_shown(const tui_app *app, size_t pos);

#endif
