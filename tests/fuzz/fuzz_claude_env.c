/* claude.env (agent/claude_env.c): the credentials file auth-set writes and
 * the agent reads for every session it starts. What parses holds only valid
 * values and never both secrets, and encodes to a file that parses back to
 * the same set; a refusal says why, shows no value and leaves nothing of the
 * input behind; the file reader agrees with the parser. */
#include <stdlib.h>
#include <string.h>

#include "agent/claude_env.h"
#include "fuzz.h"

#define ELLIPSIS "\xe2\x80\xa6"

static int same(const claude_env *a, const claude_env *b)
{
    for (int k = 0; k < CLAUDE_ENV_KEYS; k++)
        if (a->has[k] != b->has[k] || strcmp(a->value[k], b->value[k]) != 0)
            return 0;
    return 1;
}

/* The hint shows the last 4 characters of a long secret, none of a short. */
static void check_hint(const char *secret)
{
    char hint[16];
    size_t len = strlen(secret);
    claude_env_hint(secret, hint, sizeof hint);
    if (len >= CLAUDE_ENV_HINT_MIN)
        FUZZ_CHECK(strncmp(hint, ELLIPSIS, 3) == 0 && strcmp(hint + 3, secret + len - 4) == 0);
    else
        FUZZ_CHECK(strcmp(hint, ELLIPSIS) == 0);
}

static void check_parsed(const claude_env *env)
{
    FUZZ_CHECK(!(env->has[CLAUDE_API_KEY] && env->has[CLAUDE_OAUTH_TOKEN]));
    claude_env one;
    claude_env_init(&one);
    for (int k = 0; k < CLAUDE_ENV_KEYS; k++) {
        const char *v = env->value[k];
        if (!env->has[k]) {
            FUZZ_CHECK(v[0] == '\0');
            continue;
        }
        FUZZ_CHECK(claude_value_is_valid(v, strlen(v)));
        FUZZ_CHECK(claude_env_set(&one, (claude_env_key)k, v) == 0); /* auth-set's path */
        if (k == CLAUDE_API_KEY || k == CLAUDE_OAUTH_TOKEN)
            check_hint(v);
    }
    FUZZ_CHECK(same(&one, env));
}

/* What claude_env_save would write: within the reader's bound, and the
 * same set when parsed again. */
static void check_round_trip(const claude_env *env)
{
    size_t len = 0;
    char *text = claude_env_encode(env, &len);
    FUZZ_CHECK(text != NULL && strlen(text) == len && len <= CLAUDE_ENV_FILE_MAX);
    claude_env back;
    char err[256] = "";
    if (claude_env_parse(text, len, &back, err, sizeof err) < 0)
        fuzz_fail(err, __FILE__, __LINE__);
    FUZZ_CHECK(same(&back, env));
    claude_env_wipe(&back);
    free(text);
}

/* An unknown key is quoted only when it looks like a variable name, so a
 * secret pasted before an '=' never reaches a log. */
static void check_refusal(const char *err, const claude_env *env)
{
    static const claude_env wiped; /* all zero */
    FUZZ_CHECK(strncmp(err, "claude.env", 10) == 0);
    FUZZ_CHECK(memcmp(env, &wiped, sizeof wiped) == 0);
    const char *q = strstr(err, "unknown key \"");
    if (q == NULL)
        return;
    q += strlen("unknown key \"");
    size_t n = strspn(q, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
    FUZZ_CHECK(n > 0 && q[n] == '"' && q[n + 1] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    claude_env env, loaded;
    char err[256] = "", err_load[256] = "";
    int parsed = claude_env_parse((const char *)data, size, &env, err, sizeof err);
    if (parsed == 0) {
        check_parsed(&env);
        check_round_trip(&env);
    } else {
        FUZZ_CHECK(parsed == -1);
        check_refusal(err, &env);
    }
    int from_file = claude_env_load(fuzz_file(data, size), &loaded, err_load, sizeof err_load);
    FUZZ_CHECK(from_file == (parsed == 0 ? 1 : -1));
    FUZZ_CHECK(same(&loaded, &env));
    if (parsed < 0)
        FUZZ_CHECK(strcmp(err, err_load) == 0);
    claude_env_wipe(&loaded);
    claude_env_wipe(&env);
    return 0;
}
