#include "host/vm/seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/paths.h"
#include "common/spawn.h"
#include "common/tree.h"
#include "provision/digest.h"

#define SEED_OUT_MAX 4096

bool vm_pubkey_is_valid(const char *line)
{
    size_t len = strlen(line);
    if (len == 0 || len > VM_PUBKEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (line[i] < 0x20 || line[i] > 0x7e)
            return false;
    return strncmp(line, "ssh-", 4) == 0 || strncmp(line, "ecdsa-", 6) == 0 ||
           strncmp(line, "sk-", 3) == 0;
}

/* The key as a YAML double-quoted scalar: only '"' and '\' need escaping
 * in printable ASCII. */
static void yaml_quote(const char *s, char *out)
{
    *out++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *out++ = '\\';
        *out++ = *s;
    }
    *out++ = '"';
    *out = '\0';
}

/* Why each part: storage by serial puts the system on the OS disk whatever
 * the two disks' sizes (virt_install.c gives it that serial); the user is
 * made by cloud-init's user-data (which autoinstall allows instead of its
 * identity section), key-only with passwordless sudo, so that
 * `convocate-host install --host` can take over; no password exists. */
char *vm_seed_user_data(const vm_seed_spec *s)
{
    char key[2 * VM_PUBKEY_MAX + 3];
    yaml_quote(s->pubkey, key);
    size_t cap =
        strlen(key) + strlen(s->hostname) * 2 + strlen(s->domain) + strlen(s->username) + 1024;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    snprintf(out, cap,
             "#cloud-config\n"
             "autoinstall:\n"
             "  version: 1\n"
             "  locale: en_US.UTF-8\n"
             "  keyboard:\n"
             "    layout: us\n"
             "  storage:\n"
             "    layout:\n"
             "      name: direct\n"
             "      match:\n"
             "        serial: convocate-os\n"
             "  ssh:\n"
             "    install-server: true\n"
             "    allow-pw: false\n"
             "  user-data:\n"
             "    hostname: %s\n"
             "    fqdn: %s.%s\n"
             "    timezone: Etc/UTC\n"
             "    users:\n"
             "      - name: %s\n"
             "        groups: [sudo]\n"
             "        shell: /bin/bash\n"
             "        lock_passwd: true\n"
             "        sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"
             "        ssh_authorized_keys:\n"
             "          - %s\n",
             s->hostname, s->hostname, s->domain, s->username, key);
    return out;
}

char *vm_seed_meta_data(const vm_seed_spec *s)
{
    char *out = NULL;
    if (asprintf(&out, "instance-id: convocate-%s\nlocal-hostname: %s\n", s->hostname,
                 s->hostname) < 0)
        return NULL;
    return out;
}

int vm_seed_digest(const vm_seed_spec *s, char hex[65])
{
    char *ud = vm_seed_user_data(s), *md = vm_seed_meta_data(s);
    digest_sha256 *d = digest_begin();
    int rc = ud != NULL && md != NULL && d != NULL ? 0 : -1;
    /* The NUL between them keeps "ab"+"c" apart from "a"+"bc". */
    if (rc == 0)
        rc = digest_update(d, ud, strlen(ud) + 1) < 0 || digest_update(d, md, strlen(md)) < 0;
    if (d != NULL && digest_end(d, hex) < 0)
        rc = -1;
    free(ud);
    free(md);
    return rc == 0 ? 0 : -1;
}

static int write_text(const char *dir, const char *name, char *text, char *err, size_t errlen)
{
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = text != NULL ? atomic_write_file(path, text, strlen(text), 0600, KEEP_OWNER, 0) : -1;
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", path, text ? strerror(errno) : "out of memory");
    free(text);
    return rc;
}

/* 127 from spawn is "not found in PATH" (the shell's convention). */
static int make_iso(const char *dir, const char *out_path, char *err, size_t errlen)
{
    char ud[PATH_BUF + 16], md[PATH_BUF + 16], *out = NULL;
    snprintf(ud, sizeof ud, "%s/user-data", dir);
    snprintf(md, sizeof md, "%s/meta-data", dir);
    char *geniso[] = {"genisoimage",
                      "-quiet",
                      "-output",
                      (char *)out_path,
                      "-volid",
                      "cidata",
                      "-joliet",
                      "-rock",
                      ud,
                      md,
                      NULL};
    char *localds[] = {"cloud-localds", (char *)out_path, ud, md, NULL};
    int status = spawn_capture(geniso, &out, SEED_OUT_MAX);
    if (status < 0 || status == 127) {
        free(out);
        out = NULL;
        status = spawn_capture(localds, &out, SEED_OUT_MAX);
        if (status < 0 || status == 127) {
            free(out);
            snprintf(err, errlen,
                     "neither genisoimage nor cloud-localds runs on this machine: "
                     "install genisoimage (or cloud-image-utils)");
            return -1;
        }
    }
    if (status != 0)
        snprintf(err, errlen, "making %s failed (exit %d): %.200s", out_path, status,
                 out ? out : "");
    free(out);
    return status == 0 ? 0 : -1;
}

int vm_seed_make(const vm_seed_spec *s, const char *out_path, char *err, size_t errlen)
{
    char dir[] = "/tmp/convocate-seed-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    int rc = write_text(dir, "user-data", vm_seed_user_data(s), err, errlen);
    if (rc == 0)
        rc = write_text(dir, "meta-data", vm_seed_meta_data(s), err, errlen);
    if (rc == 0)
        rc = make_iso(dir, out_path, err, errlen);
    if (tree_remove(dir) < 0)
        fprintf(stderr, "convocate-host create-vm: could not remove %s: %s\n", dir,
                strerror(errno));
    return rc;
}
