/* The virt-install command that boots a new VM from the Ubuntu live-server
 * ISO with our NoCloud seed (SPEC 11). Built as an argv, never a shell
 * string; the remote runner quotes each word (shell_quote.c). Pure, for
 * unit tests: on these machines there is no /dev/kvm to run it against. */
#ifndef CONVOCATE_HOST_VM_VIRT_INSTALL_H
#define CONVOCATE_HOST_VM_VIRT_INSTALL_H

#include <stddef.h>

#define VIRT_INSTALL_MAX_ARGS 40
#define VIRT_INSTALL_ARG_MAX 512

typedef struct {
    const char *name;       /* the VM's libvirt name */
    const char *os_variant; /* osinfo id, e.g. "ubuntu22.04" */
    const char *iso;        /* the live-server ISO on the hypervisor */
    const char *seed;       /* the cidata seed ISO on the hypervisor */
    const char *os_disk;    /* qcow2 paths on the hypervisor */
    const char *data_disk;
    const char *network; /* libvirt network, e.g. "default" */
    long cpu, ram_mb, osdisk_gb, datadisk_gb;
} virt_install_spec;

typedef struct {
    char *argv[VIRT_INSTALL_MAX_ARGS + 1]; /* NULL-terminated, into words */
    char words[VIRT_INSTALL_MAX_ARGS][VIRT_INSTALL_ARG_MAX];
    size_t n;
} virt_install_cmd;

/* 0, or -1 with err when a path holds a ',' (virt-install would read it as
 * the start of a sub-option) or a word does not fit. */
int virt_install_build(const virt_install_spec *s, virt_install_cmd *cmd, char *err, size_t errlen);

#endif
