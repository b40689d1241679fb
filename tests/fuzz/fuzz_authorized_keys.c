/* An OpenSSH authorized_keys file (ssh/keys.c authorized_keys_load), read
 * afresh by both listeners on every connection, with its options field
 * (ssh/auth_options.c) and from= pattern lists (common/addr_pattern.c). */
#include <stdbool.h>

#include "common/addr_pattern.h"
#include "fuzz.h"
#include "ssh/keys.h"

static const char *const sources[] = {"127.0.0.2", "10.1.2.3", "::1", "fd00::7"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authorized_keys ak = {0};
    char err[256];
    if (authorized_keys_load(fuzz_file(data, size), &ak, err, sizeof err) < 0)
        return 0;
    FUZZ_CHECK(ak.count <= AUTH_KEYS_MAX_ENTRIES);
    for (size_t i = 0; i < ak.count; i++) {
        char fp[FINGERPRINT_LEN];
        FUZZ_CHECK(ssh_key_type(ak.keys[i]) == SSH_KEYTYPE_ED25519);
        FUZZ_CHECK(key_fingerprint_sha256(ak.keys[i], fp) == 0);
        /* A from= list that was kept is well formed. */
        FUZZ_CHECK(ak.from[i] == NULL || addr_pattern_check(ak.from[i], err, sizeof err) == 0);
        bool any_source = false;
        for (size_t s = 0; s < sizeof sources / sizeof *sources; s++) {
            enum auth_keys_verdict v = authorized_keys_check(&ak, ak.keys[i], sources[s]);
            FUZZ_CHECK(v != AUTH_KEYS_NOT_LISTED);
            any_source |= v == AUTH_KEYS_ALLOWED;
        }
        /* A key without from= is allowed from everywhere. */
        FUZZ_CHECK(ak.from[i] != NULL || any_source);
    }
    authorized_keys_clear(&ak);
    return 0;
}
