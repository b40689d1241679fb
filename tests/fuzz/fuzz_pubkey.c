/* Public key files (ssh/pubkey.c): the agent keys status-serve maps to
 * agent ids and the pinned host keys ssh/client.c compares with what a peer
 * offers. (libssh's ssh_pki_import_pubkey_file, which the client used
 * before, over-reads its buffer on "ssh-ed25519" alone: this harness found
 * it, so the pins go through pubkey_file_load now.) Also the pin reader of
 * convocate-host init-agent (ssh/keygen.c keygen_parse_public), which reads
 * pins and host keys from the hosts it installs over ssh. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ssh/keygen.h"
#include "ssh/pubkey.h"

/* It takes the first ssh-ed25519 key on any line, so it accepts more than
 * pubkey_parse: what it returns must be a whole ed25519 key. */
static void check_keygen_public(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    ssh_key key = NULL;
    char err[128] = "", fp[FINGERPRINT_LEN];
    if (keygen_parse_public(text, &key, err, sizeof err) == 0) {
        FUZZ_CHECK(key != NULL && ssh_key_type(key) == SSH_KEYTYPE_ED25519);
        FUZZ_CHECK(key_fingerprint_sha256(key, fp) == 0);
    } else {
        FUZZ_CHECK(key == NULL && err[0] != '\0');
    }
    ssh_key_free(key);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ssh_key key = NULL;
    char err[256] = "", fp[FINGERPRINT_LEN], fp2[FINGERPRINT_LEN];
    int parsed = pubkey_parse((const char *)data, size, &key, err, sizeof err);
    if (parsed == 0) {
        FUZZ_CHECK(ssh_key_type(key) == SSH_KEYTYPE_ED25519);
        FUZZ_CHECK(key_fingerprint_sha256(key, fp) == 0 && strncmp(fp, "SHA256:", 7) == 0);
    } else {
        FUZZ_CHECK(key == NULL && err[0] != '\0');
    }
    const char *path = fuzz_file(data, size);
    int from_file = pubkey_file_fingerprint(path, fp2, err, sizeof err);
    FUZZ_CHECK((from_file == 0) == (parsed == 0));
    if (parsed == 0)
        FUZZ_CHECK(strcmp(fp, fp2) == 0);
    ssh_key_free(key);
    ssh_key pinned = NULL; /* the pin loader of ssh/client.c */
    FUZZ_CHECK((pubkey_file_load(path, &pinned, err, sizeof err) == 0) == (parsed == 0));
    if (parsed == 0)
        FUZZ_CHECK(ssh_key_type(pinned) == SSH_KEYTYPE_ED25519);
    ssh_key_free(pinned);
    check_keygen_public(data, size);
    return 0;
}
