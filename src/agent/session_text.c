#include "agent/session_text.h"

#include <stdlib.h>
#include <string.h>

const char *session_state_char(bool valid, bool running, int attached, bool locked)
{
    if (!valid)
        return "!"; /* SPEC 6.2: its metadata does not parse or validate */
    if (running)
        return attached > 0 ? "C" : "R";
    return locked ? "L" : "-";
}

/* The fields the tail writes. A metadata file may carry any of them as an
 * unknown field (kept for rewrites): the head leaves them out, so the
 * object never holds one twice. */
static const char *const tail_keys[] = {"autonomous", "running", "attached",
                                        "locked",     "state",   "activity"};

json_t *session_head_object(const store_entry *e)
{
    if (!e->valid)
        return json_pack("{s:s, s:s}", "uuid", e->uuid, "error", e->error);
    json_t *obj = session_to_json(&e->meta);
    for (size_t i = 0; obj != NULL && i < sizeof tail_keys / sizeof tail_keys[0]; i++)
        json_object_del(obj, tail_keys[i]); /* absent is fine */
    return obj;
}

char *session_text_head(const store_entry *e, size_t *len)
{
    json_t *obj = session_head_object(e);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    /* A compact object always ends in its one closing brace; cut it off so
     * the tail can go on with more fields. */
    if (n < 2 || text[n - 1] != '}') {
        free(text);
        return NULL;
    }
    text[--n] = '\0';
    *len = n;
    return text;
}

static void append_activity(textbuf *b, json_t *activity)
{
    if (activity == NULL || json_is_null(activity)) {
        textbuf_append_str(b, "null");
        return;
    }
    char *text = json_dumps(activity, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        textbuf_fail(b); /* out of memory: no answer rather than a wrong one */
        return;
    }
    textbuf_append_str(b, text);
    free(text);
}

static void append_bool(textbuf *b, const char *key, bool v)
{
    textbuf_append_str(b, key);
    textbuf_append_str(b, v ? "true" : "false");
}

/* Literal pieces, not printf: this runs for every session on every list. */
void session_text_tail(textbuf *b, bool valid, const session_live *live)
{
    if (valid)
        append_bool(b, ",\"autonomous\":", live->autonomous);
    append_bool(b, ",\"running\":", live->running);
    if (live->attached == 0)
        textbuf_append_str(b, ",\"attached\":0");
    else
        textbuf_appendf(b, ",\"attached\":%d", live->attached);
    append_bool(b, ",\"locked\":", live->locked);
    textbuf_append_str(b, ",\"state\":\"");
    textbuf_append_str(b, session_state_char(valid, live->running, live->attached, live->locked));
    textbuf_append_str(b, "\",\"activity\":");
    append_activity(b, live->activity);
    textbuf_append_str(b, "}");
}
