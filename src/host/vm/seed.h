/* The cloud-init NoCloud seed that makes Ubuntu's live-server installer
 * (subiquity) install the VM unattended (SPEC 11): an ISO 9660 volume
 * labelled "cidata" holding user-data (the autoinstall stanza) and
 * meta-data. Made on this machine, then copied to the hypervisor. */
#ifndef CONVOCATE_HOST_VM_SEED_H
#define CONVOCATE_HOST_VM_SEED_H

#include <stdbool.h>
#include <stddef.h>

#define VM_PUBKEY_MAX 8192

typedef struct {
    const char *hostname; /* one label */
    const char *domain;
    const char *username; /* checked by vm_request.c */
    const char *pubkey;   /* one authorized_keys line, checked by vm_pubkey_is_valid */
} vm_seed_spec;

/* One line of printable ASCII, at most VM_PUBKEY_MAX bytes, starting with
 * a key type OpenSSH writes ("ssh-", "ecdsa-", "sk-"). */
bool vm_pubkey_is_valid(const char *line);

/* The user-data and meta-data texts; malloc'd, NULL when out of memory. */
char *vm_seed_user_data(const vm_seed_spec *s);
char *vm_seed_meta_data(const vm_seed_spec *s);

/* SHA-256 of the user-data and meta-data texts: what tells whether a seed
 * on the hypervisor is still the one wanted, since genisoimage stamps each
 * ISO with the time it was made. 0, or -1 when out of memory. */
int vm_seed_digest(const vm_seed_spec *s, char hex[65]);

/* Writes the seed ISO to out_path (a path of this machine) with genisoimage,
 * or cloud-localds when genisoimage is missing; 0, or -1 with err. */
int vm_seed_make(const vm_seed_spec *s, const char *out_path, char *err, size_t errlen);

#endif
