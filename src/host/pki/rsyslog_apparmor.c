#include "host/pki/rsyslog_apparmor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/init_agent.h"
#include "host/init_shell.h"
#include "host/pki/rsyslog_conf.h"

#define STEP "rsyslog AppArmor"
#define PARSER_OUTPUT_MAX 8192
#define KERNEL_INTERFACE "/sys/kernel/security/apparmor"

/* What rsyslogd reads and writes for the log channel, on a shell, an agent
 * or a host that is both. The CA's private key is deliberately absent. The
 * network and openssl lines repeat what the profile may already grant;
 * AppArmor merges duplicates. */
static const char block[] =
    RSYSLOG_APPARMOR_BEGIN " (written by convocate-host; this block is replaced on each run)\n"
                           "  #include <abstractions/openssl>\n"
                           "  network inet stream,\n"
                           "  network inet6 stream,\n"
                           "  " SHELL_RSYSLOG_CA_CERT " r,\n"
                           "  " SHELL_RSYSLOG_SERVER_CERT " r,\n"
                           "  " SHELL_RSYSLOG_SERVER_KEY " r,\n"
                           "  " AGENT_RSYSLOG_TLS_DIR "/ca.crt r,\n"
                           "  " AGENT_RSYSLOG_TLS_DIR "/client.crt r,\n"
                           "  " AGENT_RSYSLOG_TLS_DIR "/client.key r,\n"
                           "  " RSYSLOG_AGENT_LOG_DIR "/ rw,\n"
                           "  " RSYSLOG_AGENT_LOG_DIR "/*.log rw,\n" RSYSLOG_APPARMOR_END "\n";

/* The start of the line holding marker at or after from, or NULL. Only a
 * whole line counts, so a comment that mentions the marker does not. */
static const char *find_line(const char *text, const char *from, const char *marker)
{
    for (const char *at = strstr(from, marker); at != NULL; at = strstr(at + 1, marker)) {
        if (at == text || at[-1] == '\n')
            return at;
    }
    return NULL;
}

char *rsyslog_apparmor_merge(const char *existing, size_t len, size_t *out_len)
{
    char *text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    if (len > 0)
        memcpy(text, existing, len);
    text[len] = '\0';
    /* Before and after our block; the block itself is rewritten. */
    size_t head = strlen(text), tail_at = head;
    const char *begin = find_line(text, text, RSYSLOG_APPARMOR_BEGIN);
    if (begin != NULL) {
        const char *end = find_line(text, begin, RSYSLOG_APPARMOR_END);
        if (end == NULL) {
            free(text);
            return NULL;
        }
        end += strcspn(end, "\n");
        head = (size_t)(begin - text);
        tail_at = (size_t)(end - text) + (*end == '\n');
    }
    size_t tail = strlen(text + tail_at);
    bool needs_newline = head > 0 && text[head - 1] != '\n';
    size_t total = head + needs_newline + sizeof block - 1 + tail;
    char *out = malloc(total + 1);
    if (out == NULL) {
        free(text);
        return NULL;
    }
    memcpy(out, text, head);
    size_t at = head;
    if (needs_newline)
        out[at++] = '\n';
    memcpy(out + at, block, sizeof block - 1);
    at += sizeof block - 1;
    memcpy(out + at, text + tail_at, tail);
    out[total] = '\0';
    free(text);
    *out_len = total;
    return out;
}

static bool exists(runner *r, const char *path, bool *is_dir)
{
    runner_stat st;
    char err[256];
    if (r->ops->stat_path(r, path, &st, err, sizeof err) < 0 || !st.exists)
        return false;
    if (is_dir != NULL)
        *is_dir = st.is_dir;
    return true;
}

/* The profile is only loaded on the real root of a host whose kernel runs
 * AppArmor; elsewhere the rules wait for the next boot or reload. */
static int reload(plan *p, runner *r)
{
    if (!runner_is_real_root(r))
        return 0;
    if (!exists(r, KERNEL_INTERFACE, NULL)) {
        printf("  %s: AppArmor is not active on %s; the rules apply once it is\n", STEP, r->where);
        return 0;
    }
    if (!r->ops->has_program(r, "apparmor_parser")) {
        printf("  %s: apparmor_parser is not installed on %s; run 'apparmor_parser -r %s' "
               "there\n",
               STEP, r->where, RSYSLOG_APPARMOR_PROFILE);
        return 0;
    }
    char *argv[] = {"apparmor_parser", "-r", RSYSLOG_APPARMOR_PROFILE, NULL};
    char *out = NULL, err[512], line[512];
    int status = r->ops->run(r, argv, &out, PARSER_OUTPUT_MAX, err, sizeof err);
    runner_output_last_line(status < 0 ? err : out, line, sizeof line);
    free(out);
    if (status != 0)
        return plan_fail(p, STEP,
                         "apparmor_parser -r %s failed (exit %d): %s; the rules are in %s, fix "
                         "or remove the block and run again",
                         RSYSLOG_APPARMOR_PROFILE, status, line, RSYSLOG_APPARMOR_LOCAL);
    printf("  %s: profile reloaded\n", STEP);
    return 0;
}

int rsyslog_apparmor_step(plan *p, runner *r)
{
    bool is_dir = false;
    if (!exists(r, RSYSLOG_APPARMOR_PROFILE, NULL))
        return 0; /* rsyslogd is not confined there */
    char *text = NULL;
    size_t len = 0, merged_len = 0;
    if (exists(r, RSYSLOG_APPARMOR_LOCAL_DIR, &is_dir) && !is_dir)
        return plan_fail(p, STEP, "%s exists and is not a directory", RSYSLOG_APPARMOR_LOCAL_DIR);
    if (plan_dir(p, r, STEP " local/", RSYSLOG_APPARMOR_LOCAL_DIR, 0755, 0, 0) < 0 ||
        plan_read(p, r, STEP, RSYSLOG_APPARMOR_LOCAL, &text, &len) < 0)
        return -1;
    char *merged = rsyslog_apparmor_merge(text, len, &merged_len);
    free(text);
    if (merged == NULL)
        return plan_fail(p, STEP, "%s has a '%s' line without its '%s'; repair it by hand",
                         RSYSLOG_APPARMOR_LOCAL, RSYSLOG_APPARMOR_BEGIN, RSYSLOG_APPARMOR_END);
    int before = p->changes;
    int rc = plan_file(p, r, STEP, RSYSLOG_APPARMOR_LOCAL, merged, merged_len, 0644, 0, 0);
    free(merged);
    if (rc < 0 || p->changes == before || p->dry_run)
        return rc;
    return reload(p, r);
}
