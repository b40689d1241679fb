/* What an operator asks of create-vm (SPEC 11), checked before any
 * connection: sizes within bounds, a login name the VM's useradd accepts,
 * a DNS domain the shell's dnsmasq can serve. Pure, for unit tests. */
#ifndef CONVOCATE_HOST_VM_REQUEST_H
#define CONVOCATE_HOST_VM_REQUEST_H

#include <stdbool.h>

/* The SPEC's floors, and ceilings that catch a typo before it becomes a
 * pledge: no hypervisor we provision has 1024 cores or 4 TiB of RAM. */
#define VM_CPU_MIN 1
#define VM_CPU_MAX 1024
#define VM_RAM_MIN_MB 512
#define VM_RAM_MAX_MB (4L * 1024 * 1024)
#define VM_OSDISK_MIN_GB 5
#define VM_DATADISK_MIN_GB 1
#define VM_DISK_MAX_GB (64L * 1024)

#define VM_USERNAME_MAX 32
#define VM_DOMAIN_MAX 253

/* A decimal count in [min, max]; -1 for anything else ("", "4x", "-1"). */
int vm_parse_count(const char *s, long min, long max, long *out);

/* Debian's and Ubuntu's portable login name: [a-z_][a-z0-9_-]*, at most
 * 32 characters; "root" is refused (the VM's user logs in, root never). */
bool vm_username_is_valid(const char *s);

/* Dot-separated RFC 1123 labels, lowercase, each 1..63 characters, not
 * starting or ending with '-', 253 characters in all; at least two labels
 * and a last label that is not all digits, so it cannot be an address. */
bool vm_domain_is_valid(const char *s);

#endif
