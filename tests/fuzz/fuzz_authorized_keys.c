/* An OpenSSH authorized_keys file (ssh/keys.c authorized_keys_load), read
 * afresh by both listeners on every connection. */
#include "fuzz.h"
#include "ssh/keys.h"

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
        FUZZ_CHECK(authorized_keys_match(&ak, ak.keys[i]));
    }
    authorized_keys_clear(&ak);
    return 0;
}
