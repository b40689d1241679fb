/* Channel plumbing: the helpers subsystem handlers use (output queue,
 * watched fds) and one channel's turn in its connection's loop (input
 * delivered within the handler's room, output sent within the SSH window,
 * close once drained). */
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/log.h"
#include "ssh/listener_internal.h"

/* ---------- channel helpers for handlers ---------- */

int lchan_write(lchan *ch, const void *buf, size_t len)
{
    if (len == 0 || ch->peer_closed || ch->sent_close)
        return 0;
    if (ch->out_off > 0 && ch->out_off == ch->out_len)
        ch->out_off = ch->out_len = 0;
    if (grow_array(&ch->out, &ch->out_cap, ch->out_len + len, 1, 4096) < 0)
        return -1;
    memcpy(ch->out + ch->out_len, buf, len);
    ch->out_len += len;
    return 0;
}

size_t lchan_pending(const lchan *ch)
{
    return ch->out_len - ch->out_off;
}

size_t lchan_writable(const lchan *ch)
{
    if (ch->peer_closed || ch->sent_close)
        return 0;
    size_t window = ssh_channel_window_size(ch->chan);
    size_t pending = lchan_pending(ch);
    return window > pending ? window - pending : 0;
}

int lchan_hold_input(lchan *ch, size_t bytes)
{
    lconn *c = ch->conn;
    size_t others = c->held_input - ch->held_input;
    if (bytes > LISTENER_MAX_HELD_INPUT - others) {
        log_info("%s: %zu bytes of unfinished input refused: its connection already holds %zu "
                 "(limit %d per connection)",
                 ch->name, bytes, others, LISTENER_MAX_HELD_INPUT);
        return -1;
    }
    c->held_input = others + bytes;
    ch->held_input = bytes;
    return 0;
}

void lchan_close(lchan *ch)
{
    ch->want_close = true;
}

void lchan_reply_and_close(lchan *ch, char *line)
{
    if (line != NULL) {
        if (lchan_write(ch, line, strlen(line)) < 0)
            log_error("%s: out of memory queueing a response", ch->name);
        free(line);
    }
    lchan_close(ch);
}

bool lchan_is_closing(const lchan *ch)
{
    return ch->want_close || ch->peer_closed || ch->closed_notified;
}

const char *lchan_name(const lchan *ch)
{
    return ch->name;
}

/* Set once by the pubkey callback before any channel can open, never
 * changed afterwards: safe to read from the connection thread. */
const char *lchan_key_fingerprint(const lchan *ch)
{
    return ch->conn->key_fp;
}

static int on_watched_fd(socket_t fd, int revents, void *userdata)
{
    (void)fd, (void)revents, (void)userdata;
    return 0; /* readiness only ends the poll; the handler's pump does the I/O */
}

int lchan_watch_fd(lchan *ch, int fd, short events)
{
    lconn *c = ch->conn;
    if (ch->watch_fd == fd && ch->watch_events == events)
        return 0;
    if (ch->watch_fd >= 0 && ch->watch_events != 0)
        ssh_event_remove_fd(c->event, ch->watch_fd);
    ch->watch_fd = fd;
    ch->watch_events = 0;
    if (events == 0 || fd < 0)
        return 0;
    if (ssh_event_add_fd(c->event, fd, events, on_watched_fd, ch) != SSH_OK)
        return -1;
    ch->watch_events = events;
    return 0;
}

/* ---------- one channel's turn in the loop ---------- */

static void deliver_input(lchan *ch)
{
    const lchan_handler *h = &ch->sub->handler;
    char buf[INPUT_CHUNK];

    /* A peer that closed may still have data buffered in libssh (a last
     * status line sent right before the close): it is delivered in this
     * round, before the handler hears of the close. */
    if (h->room == NULL || h->input == NULL || ch->eof_delivered)
        return;
    for (int i = 0; i < INPUT_CHUNKS_PER_ROUND; i++) {
        size_t room = h->room(ch->state);
        if (room == 0 || ch->closed_notified)
            return;
        if (room > sizeof buf)
            room = sizeof buf;
        int n = ssh_channel_read_nonblocking(ch->chan, buf, (uint32_t)room, 0);
        if (n > 0) {
            h->input(ch, buf, (size_t)n, ch->state);
            continue;
        }
        if (n == SSH_EOF) {
            ch->eof_delivered = true;
            if (h->eof)
                h->eof(ch, ch->state);
        } else if (n == SSH_ERROR) {
            ch->peer_closed = true;
        }
        return;
    }
}

static void flush_output(lchan *ch)
{
    while (lchan_pending(ch) > 0 && !ch->peer_closed && !ch->sent_close) {
        size_t n = ssh_channel_window_size(ch->chan);
        if (n == 0)
            return;
        if (n > lchan_pending(ch))
            n = lchan_pending(ch);
        if (n > OUTPUT_CHUNK)
            n = OUTPUT_CHUNK;
        int w = ssh_channel_write(ch->chan, ch->out + ch->out_off, (uint32_t)n);
        if (w < 0) {
            log_info("%s: write failed: %s", ch->name, ssh_get_error(ch->conn->session));
            ch->peer_closed = true;
            return;
        }
        if (w == 0)
            return;
        ch->out_off += (size_t)w;
    }
    if (ch->out_off == ch->out_len)
        ch->out_off = ch->out_len = 0;
}

static void close_if_drained(lchan *ch)
{
    if (!ch->want_close || ch->sent_close || lchan_pending(ch) > 0)
        return;
    if (!ch->peer_closed && ssh_channel_is_open(ch->chan)) {
        /* Like sshd after a subsystem ends; OpenSSH's client exits 255
         * when a session channel closes without one. */
        ssh_channel_request_send_exit_status(ch->chan, 0);
        ssh_channel_send_eof(ch->chan);
        ssh_channel_close(ch->chan);
    }
    ch->sent_close = true;
}

void channel_round(lconn *c, lchan *ch)
{
    if (ch->sub != NULL && !ch->closed_notified && !c->dying) {
        deliver_input(ch);
        if (ch->sub->handler.pump && !ch->closed_notified)
            ch->sub->handler.pump(ch, ch->state);
    }
    if (!c->dying)
        flush_output(ch);
    close_if_drained(ch);
    if (!ch->closed_notified && (ch->peer_closed || ch->sent_close || c->dying)) {
        ch->closed_notified = true;
        if (ch->sub != NULL && ch->sub->handler.closed)
            ch->sub->handler.closed(ch, ch->state);
        lchan_watch_fd(ch, -1, 0);
    }
}

void channel_release(lchan *ch)
{
    ch->conn->held_input -= ch->held_input;
    ch->held_input = 0;
    if (ch->sub != NULL)
        ch->sub->handler.release(ch->state);
    lchan_watch_fd(ch, -1, 0);
    ssh_remove_channel_callbacks(ch->chan, &ch->cb);
    ssh_channel_free(ch->chan);
    free(ch->out);
    free(ch);
}
