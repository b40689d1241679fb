/* Channel opens and channel requests (SPEC 5): only session channels, at
 * most LISTENER_MAX_CHANNELS of them, and on them only a subsystem request
 * naming a configured subsystem; pty, shell, exec and env are refused, and
 * window-change goes to the subsystem that takes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ssh/listener_internal.h"

/* ---------- channel requests ---------- */

static const listener_subsystem *find_subsystem(const listener *l, const char *name)
{
    for (size_t i = 0; i < l->cfg.n_subsystems; i++)
        if (strcmp(l->cfg.subsystems[i].name, name) == 0)
            return &l->cfg.subsystems[i];
    return NULL;
}

static int on_subsystem(ssh_session s, ssh_channel chan, const char *name, void *userdata)
{
    lchan *ch = userdata;
    (void)s;
    (void)chan;
    const listener_subsystem *sub = find_subsystem(ch->conn->l, name);
    if (sub == NULL || ch->sub != NULL || ch->want_close || ch->conn->dying) {
        log_info("%s: subsystem \"%.64s\" refused", ch->name, name);
        return 1;
    }
    void *state = sub->handler.open(ch, ch->conn->l->cfg.app);
    if (state == NULL) {
        log_warn("%s: subsystem \"%s\" could not start", ch->name, name);
        return 1;
    }
    ch->sub = sub;
    ch->state = state;
    log_debug("%s: subsystem %s", ch->name, name);
    return 0;
}

static int refuse_pty(ssh_session s, ssh_channel chan, const char *term, int w, int h, int pw,
                      int ph, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)term, (void)w, (void)h, (void)pw, (void)ph;
    log_info("%s: pty-req refused", ch->name);
    return -1;
}

static int refuse_shell(ssh_session s, ssh_channel chan, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan;
    log_info("%s: shell refused", ch->name);
    return 1;
}

static int refuse_exec(ssh_session s, ssh_channel chan, const char *command, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)command;
    log_info("%s: exec refused", ch->name);
    return 1;
}

static int refuse_env(ssh_session s, ssh_channel chan, const char *name, const char *value,
                      void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)value;
    log_debug("%s: env %.64s refused", ch->name, name);
    return 1;
}

static int on_window_change(ssh_session s, ssh_channel chan, int cols, int rows, int pw, int ph,
                            void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)pw, (void)ph;
    if (ch->sub == NULL || ch->sub->handler.window_change == NULL || ch->closed_notified) {
        /* RFC 4254 window-change wants no reply, so refusing is ignoring it. */
        log_debug("%s: window-change ignored (not an attach channel)", ch->name);
        return -1;
    }
    return ch->sub->handler.window_change(ch, cols, rows, ch->state);
}

/* A "signal" request is refused. libssh 0.10 consumes it before any
 * callback that could answer (no failure reply is sent even when the client
 * asked for one, and want_reply is not passed on), so the refusal is the
 * channel's close: a client waiting for a reply is answered by it instead
 * of waiting forever. None of our subsystems has a process to signal. */
static void refuse_signal(ssh_session s, ssh_channel chan, const char *signal, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan;
    log_info("%s: signal %.32s refused; the channel is closed", ch->name, signal);
    lchan_close(ch); /* no writes from inside libssh: the next round closes */
}

static void on_channel_close(ssh_session s, ssh_channel chan, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan;
    ch->peer_closed = true;
}

/* x11-req and auth-agent-req get no callback on purpose: libssh answers
 * success when one is set, failure when none is. */
static void channel_callbacks_init(lchan *ch)
{
    memset(&ch->cb, 0, sizeof ch->cb);
    ch->cb.userdata = ch;
    ch->cb.channel_subsystem_request_function = on_subsystem;
    ch->cb.channel_pty_request_function = refuse_pty;
    ch->cb.channel_shell_request_function = refuse_shell;
    ch->cb.channel_exec_request_function = refuse_exec;
    ch->cb.channel_env_request_function = refuse_env;
    ch->cb.channel_pty_window_change_function = on_window_change;
    ch->cb.channel_signal_function = refuse_signal;
    ch->cb.channel_close_function = on_channel_close;
    ssh_callbacks_init(&ch->cb);
}

ssh_channel on_channel_open(ssh_session s, void *userdata)
{
    lconn *c = userdata;
    if (!c->authenticated || c->dying)
        return NULL;
    if (c->nchans >= LISTENER_MAX_CHANNELS) {
        log_warn("conn %u: channel refused: %d channels already open", c->id,
                 LISTENER_MAX_CHANNELS);
        return NULL;
    }
    lchan *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return NULL;
    ch->chan = ssh_channel_new(s);
    if (ch->chan == NULL) {
        free(ch);
        return NULL;
    }
    ch->conn = c;
    ch->id = c->next_chan_id++;
    ch->watch_fd = -1;
    snprintf(ch->name, sizeof ch->name, "conn %u chan %u", c->id, ch->id);
    channel_callbacks_init(ch);
    if (ssh_set_channel_callbacks(ch->chan, &ch->cb) != SSH_OK) {
        ssh_channel_free(ch->chan);
        free(ch);
        return NULL;
    }
    /* Newest first: a channel opened while the list is being walked is
     * simply seen on the next round. */
    ch->next = c->chans;
    c->chans = ch;
    c->nchans++;
    return ch->chan;
}
