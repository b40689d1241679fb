#include "shell/tui/form.h"

#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/tui/text.h"

enum { F_NAME, F_PROTOCOL, F_PORT, F_DNS, F_MODEL, F_AUTONOMY };

/* The Autonomous field: the agent's default_autonomous, or the session's own. */
#define AUTONOMY_DEFAULT "default"

static void set_session_fields(tui_form *f)
{
    static const struct {
        const char *label;
        field_kind kind;
    } layout[] = {
        {"Name", FIELD_TEXT},     {"Protocol", FIELD_PROTOCOL}, {"Port", FIELD_PORT},
        {"DNS name", FIELD_TEXT}, {"Model", FIELD_TEXT},        {"Autonomous", FIELD_AUTONOMY},
    };
    for (size_t i = 0; i < FORM_FIELDS_MAX; i++) {
        f->fields[i].label = layout[i].label;
        f->fields[i].kind = layout[i].kind;
    }
    f->n_fields = FORM_FIELDS_MAX;
    snprintf(f->fields[F_PROTOCOL].value, sizeof f->fields[F_PROTOCOL].value, "tcp");
    snprintf(f->fields[F_AUTONOMY].value, sizeof f->fields[F_AUTONOMY].value, AUTONOMY_DEFAULT);
    snprintf(f->autonomy_was, sizeof f->autonomy_was, AUTONOMY_DEFAULT);
}

void form_init_create(tui_form *f, const char *agent_id)
{
    memset(f, 0, sizeof *f);
    snprintf(f->op, sizeof f->op, "create");
    snprintf(f->agent_id, sizeof f->agent_id, "%s", agent_id);
    snprintf(f->title, sizeof f->title, "New session on %s", agent_id);
    set_session_fields(f);
    /* 0 = no port; the operator types -1 to have the agent pick one. */
    snprintf(f->fields[F_PORT].value, sizeof f->fields[F_PORT].value, "0");
}

void form_init_edit(tui_form *f, const tui_row *row)
{
    memset(f, 0, sizeof *f);
    snprintf(f->op, sizeof f->op, "edit");
    snprintf(f->agent_id, sizeof f->agent_id, "%s", row->agent);
    snprintf(f->uuid, sizeof f->uuid, "%s", row->uuid);
    snprintf(f->source_name, sizeof f->source_name, "%s", row->name);
    snprintf(f->title, sizeof f->title, "Edit %s (%.8s on %s)", row->name, row->uuid, row->agent);
    set_session_fields(f);
    snprintf(f->fields[F_NAME].value, sizeof f->fields[F_NAME].value, "%s", row->name);
    if (strcmp(row->protocol, "udp") == 0)
        snprintf(f->fields[F_PROTOCOL].value, sizeof f->fields[F_PROTOCOL].value, "udp");
    snprintf(f->fields[F_PORT].value, sizeof f->fields[F_PORT].value, "%ld", row->port);
    snprintf(f->fields[F_DNS].value, sizeof f->fields[F_DNS].value, "%s", row->dns_name);
    snprintf(f->fields[F_MODEL].value, sizeof f->fields[F_MODEL].value, "%s", row->model);
    /* The agent reports the effective value; it is sent back only when changed. */
    snprintf(f->autonomy_was, sizeof f->autonomy_was, "%s", row->autonomous ? "yes" : "no");
    snprintf(f->fields[F_AUTONOMY].value, sizeof f->fields[F_AUTONOMY].value, "%s",
             f->autonomy_was);
}

void form_init_clone(tui_form *f, const tui_row *row)
{
    memset(f, 0, sizeof *f);
    snprintf(f->op, sizeof f->op, "clone");
    snprintf(f->agent_id, sizeof f->agent_id, "%s", row->agent);
    snprintf(f->uuid, sizeof f->uuid, "%s", row->uuid);
    snprintf(f->source_name, sizeof f->source_name, "%s", row->name);
    snprintf(f->title, sizeof f->title, "Clone %s (%.8s on %s)", row->name, row->uuid, row->agent);
    f->fields[0].label = "New name";
    f->fields[0].kind = FIELD_TEXT;
    f->n_fields = 1;
}

static void toggle_protocol(form_field *field, wint_t key)
{
    const char *next;
    if (key == 't' || key == 'T')
        next = "tcp";
    else if (key == 'u' || key == 'U')
        next = "udp";
    else
        next = strcmp(field->value, "tcp") == 0 ? "udp" : "tcp";
    snprintf(field->value, sizeof field->value, "%s", next);
}

static void toggle_autonomy(form_field *field, wint_t key)
{
    const char *next;
    if (key == 'y' || key == 'Y')
        next = "yes";
    else if (key == 'n' || key == 'N')
        next = "no";
    else if (key == 'd' || key == 'D')
        next = AUTONOMY_DEFAULT;
    else if (key != ' ')
        return;
    else if (strcmp(field->value, AUTONOMY_DEFAULT) == 0)
        next = "yes";
    else
        next = strcmp(field->value, "yes") == 0 ? "no" : AUTONOMY_DEFAULT;
    snprintf(field->value, sizeof field->value, "%s", next);
}

static void type_char(form_field *field, wint_t key)
{
    if (field->kind == FIELD_AUTONOMY) {
        toggle_autonomy(field, key);
        return;
    }
    if (field->kind == FIELD_PROTOCOL) {
        if (key == ' ' || key == 't' || key == 'T' || key == 'u' || key == 'U')
            toggle_protocol(field, key);
        return;
    }
    if (key < 0x20 || key == 0x7f)
        return;
    if (field->kind == FIELD_PORT && !(key >= '0' && key <= '9') && key != '-')
        return;
    text_append_wchar(field->value, sizeof field->value, key);
}

static void move_focus(tui_form *f, int step)
{
    f->focus = step > 0 ? (f->focus + 1) % f->n_fields : (f->focus + f->n_fields - 1) % f->n_fields;
}

form_outcome form_key(tui_form *f, bool is_key, wint_t key)
{
    form_field *field = &f->fields[f->focus];
    if (!is_key && key == 27)
        return FORM_CANCEL;
    if (f->pending_job)
        return FORM_GOING_ON; /* the agent has it: wait for its answer */
    if ((!is_key && (key == '\n' || key == '\r')) || (is_key && key == KEY_ENTER))
        return FORM_SUBMIT;
    if ((!is_key && key == '\t') || (is_key && key == KEY_DOWN))
        move_focus(f, 1);
    else if (is_key && (key == KEY_BTAB || key == KEY_UP))
        move_focus(f, -1);
    else if ((is_key && key == KEY_BACKSPACE) || (!is_key && (key == 0x7f || key == 8)))
        text_drop_last(field->value);
    else if (!is_key)
        type_char(field, key);
    return FORM_GOING_ON;
}

static int parse_port(const char *text, long *port)
{
    if (text[0] == '\0') {
        *port = 0;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < -1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* "autonomous" only when the operator changed the field, so a session on
 * the agent's default stays on it: true, false, or null for the default. */
static int add_autonomy(const tui_form *f, json_t *p)
{
    const char *v = f->fields[F_AUTONOMY].value;
    if (strcmp(v, f->autonomy_was) == 0)
        return 0;
    json_t *value =
        strcmp(v, AUTONOMY_DEFAULT) == 0 ? json_null() : json_boolean(strcmp(v, "yes") == 0);
    return json_object_set_new(p, "autonomous", value);
}

json_t *form_params(const tui_form *f, char *err, size_t errlen)
{
    if (strcmp(f->op, "clone") == 0) {
        if (f->fields[0].value[0] == '\0') {
            snprintf(err, errlen, "the clone needs a name");
            return NULL;
        }
        return json_pack("{s:s, s:s}", "source_id", f->uuid, "name", f->fields[0].value);
    }
    long port;
    if (parse_port(f->fields[F_PORT].value, &port) < 0) {
        snprintf(err, errlen, "port wants -1 (pick a free one), 0 (none) or 1..65535");
        return NULL;
    }
    json_t *p = json_pack("{s:s, s:s, s:I, s:s, s:s}", "name", f->fields[F_NAME].value, "protocol",
                          f->fields[F_PROTOCOL].value, "port", (json_int_t)port, "dns_name",
                          f->fields[F_DNS].value, "model", f->fields[F_MODEL].value);
    if (p && add_autonomy(f, p) < 0) {
        json_decref(p);
        p = NULL;
    }
    if (p && f->uuid[0] && json_object_set_new(p, "id", json_string(f->uuid)) < 0) {
        json_decref(p);
        p = NULL;
    }
    if (p == NULL)
        snprintf(err, errlen, "out of memory");
    return p;
}

const char *form_dns_name(const tui_form *f)
{
    return strcmp(f->op, "clone") == 0 ? "" : f->fields[F_DNS].value;
}

void form_draw(const tui_form *f)
{
    int w = COLS - 4 < 64 ? COLS - 4 : 64;
    int h = (int)f->n_fields + 5;
    if (w < 30 || LINES < h + 3)
        return; /* too small to draw: the status line still says what is going on */
    int y = (LINES - h) / 2, x = (COLS - w) / 2;
    text_box(y, x, h, w, f->title);
    int label_w = 10, value_x = x + 3 + label_w + 1, value_w = w - (value_x - x) - 3;
    int cursor_y = y + 2, cursor_x = value_x;
    for (size_t i = 0; i < f->n_fields; i++) {
        const form_field *field = &f->fields[i];
        int row = y + 2 + (int)i;
        text_put(row, x + 3, label_w, field->label, A_NORMAL);
        char shown[160];
        if (field->kind == FIELD_PROTOCOL)
            snprintf(shown, sizeof shown, "%s  (space/t/u)", field->value);
        else if (field->kind == FIELD_AUTONOMY)
            snprintf(shown, sizeof shown, "%s  (%sspace/y/n/d)", field->value,
                     strcmp(field->value, AUTONOMY_DEFAULT) == 0 ? "the agent's setting; " : "");
        else
            snprintf(shown, sizeof shown, "%s", field->value);
        text_put(row, value_x, value_w, shown, i == f->focus ? A_REVERSE : A_UNDERLINE);
        if (i == f->focus) {
            cursor_y = row;
            bool toggle = field->kind == FIELD_PROTOCOL || field->kind == FIELD_AUTONOMY;
            int used = toggle ? 0 : text_width(field->value);
            cursor_x = value_x + (used < value_w ? used : value_w - 1);
        }
    }
    text_put(y + h - 2, x + 3, w - 6,
             f->pending_job ? "waiting for the agent... (Esc closes)"
                            : "Tab/Shift-Tab move  Enter submit  Esc cancel",
             A_DIM);
    move(cursor_y, cursor_x);
}
