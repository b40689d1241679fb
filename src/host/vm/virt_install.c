/* Why these options: the disks carry serials so the autoinstall can put
 * the system on the OS disk by serial whatever their sizes; --location
 * with the ISO's casper kernel rather than a plain --cdrom, because only a
 * kernel command line with "autoinstall" makes subiquity install without
 * asking on the console; the seed is a second CD-ROM, where cloud-init's
 * NoCloud looks for the volume "cidata"; --noautoconsole returns as soon
 * as the VM is defined and started, the install then runs on its own. */
#include "host/vm/virt_install.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define OS_SERIAL "convocate-os"
#define DATA_SERIAL "convocate-data"

static int add(virt_install_cmd *c, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int add(virt_install_cmd *c, char *err, size_t errlen, const char *fmt, ...)
{
    if (c->n >= VIRT_INSTALL_MAX_ARGS) {
        snprintf(err, errlen, "virt-install: more than %d arguments", VIRT_INSTALL_MAX_ARGS);
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(c->words[c->n], VIRT_INSTALL_ARG_MAX, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= VIRT_INSTALL_ARG_MAX) {
        snprintf(err, errlen, "virt-install: argument %zu longer than %d bytes", c->n,
                 VIRT_INSTALL_ARG_MAX - 1);
        return -1;
    }
    c->argv[c->n] = c->words[c->n];
    c->n++;
    c->argv[c->n] = NULL;
    return 0;
}

static int check_no_comma(const char *what, const char *path, char *err, size_t errlen)
{
    if (strchr(path, ',') == NULL)
        return 0;
    snprintf(err, errlen, "virt-install: the %s path %s holds a ','", what, path);
    return -1;
}

int virt_install_build(const virt_install_spec *s, virt_install_cmd *c, char *err, size_t errlen)
{
    c->n = 0;
    c->argv[0] = NULL;
    if (check_no_comma("ISO", s->iso, err, errlen) < 0 ||
        check_no_comma("seed", s->seed, err, errlen) < 0 ||
        check_no_comma("OS disk", s->os_disk, err, errlen) < 0 ||
        check_no_comma("data disk", s->data_disk, err, errlen) < 0 ||
        check_no_comma("network", s->network, err, errlen) < 0)
        return -1;
    if (add(c, err, errlen, "virt-install") < 0 || add(c, err, errlen, "--name") < 0 ||
        add(c, err, errlen, "%s", s->name) < 0 || add(c, err, errlen, "--vcpus") < 0 ||
        add(c, err, errlen, "%ld", s->cpu) < 0 || add(c, err, errlen, "--memory") < 0 ||
        add(c, err, errlen, "%ld", s->ram_mb) < 0 || add(c, err, errlen, "--os-variant") < 0 ||
        add(c, err, errlen, "%s", s->os_variant) < 0 || add(c, err, errlen, "--disk") < 0 ||
        add(c, err, errlen, "path=%s,size=%ld,format=qcow2,bus=virtio,serial=" OS_SERIAL,
            s->os_disk, s->osdisk_gb) < 0 ||
        add(c, err, errlen, "--disk") < 0 ||
        add(c, err, errlen, "path=%s,size=%ld,format=qcow2,bus=virtio,serial=" DATA_SERIAL,
            s->data_disk, s->datadisk_gb) < 0 ||
        add(c, err, errlen, "--disk") < 0 ||
        add(c, err, errlen, "path=%s,device=cdrom,readonly=on", s->seed) < 0 ||
        add(c, err, errlen, "--location") < 0 ||
        add(c, err, errlen, "%s,kernel=casper/vmlinuz,initrd=casper/initrd", s->iso) < 0 ||
        add(c, err, errlen, "--extra-args") < 0 ||
        add(c, err, errlen, "autoinstall console=ttyS0,115200n8") < 0 ||
        add(c, err, errlen, "--network") < 0 ||
        add(c, err, errlen, "network=%s,model=virtio", s->network) < 0 ||
        add(c, err, errlen, "--graphics") < 0 || add(c, err, errlen, "none") < 0 ||
        add(c, err, errlen, "--noautoconsole") < 0)
        return -1;
    return 0;
}
