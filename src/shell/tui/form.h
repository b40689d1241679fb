/* The create/edit form and the clone prompt (SPEC 12, 15): Name -> Protocol
 * -> Port -> DNS name -> Model -> Autonomous, Tab/Shift-Tab to move,
 * Space/t/u toggle the protocol, Space/y/n/d the autonomy (yes, no, or the
 * agent's default), Backspace, Enter submit, Esc cancel. What was typed survives an agent's
 * refusal: the form stays open until the agent accepts or the operator
 * cancels. */
#ifndef CONVOCATE_SHELL_TUI_FORM_H
#define CONVOCATE_SHELL_TUI_FORM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <wchar.h>

#include "ssh/registry.h"
#include "shell/tui/model.h"

#define FORM_FIELDS_MAX 6

typedef enum { FIELD_TEXT, FIELD_PROTOCOL, FIELD_PORT, FIELD_AUTONOMY } field_kind;

typedef struct {
    const char *label;
    field_kind kind;
    char value[128];
} form_field;

typedef struct {
    char title[200];
    char op[16]; /* create, edit or clone */
    char agent_id[AGENT_ID_LEN + 1];
    char uuid[40]; /* edit: the session; clone: the source */
    char source_name[128];
    char autonomy_was[8]; /* what the Autonomous field showed at first */
    form_field fields[FORM_FIELDS_MAX];
    size_t n_fields;
    size_t focus;
    unsigned pending_job; /* the job carrying the submission, 0 when none */
} tui_form;

typedef enum { FORM_GOING_ON, FORM_SUBMIT, FORM_CANCEL } form_outcome;

void form_init_create(tui_form *f, const char *agent_id);
void form_init_edit(tui_form *f, const tui_row *row);
void form_init_clone(tui_form *f, const tui_row *row);

/* One key (from get_wch: is_key tells a KEY_* code from a character). */
form_outcome form_key(tui_form *f, bool is_key, wint_t key);
/* Builds the RPC params from the fields; NULL with err set when a field is
 * not acceptable (the form stays open). */
json_t *form_params(const tui_form *f, char *err, size_t errlen);
/* The DNS name the operator typed (empty for clone). */
const char *form_dns_name(const tui_form *f);
void form_draw(const tui_form *f);

#endif
