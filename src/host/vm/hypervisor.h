/* The steps of create-vm (SPEC 11) that make a KVM hypervisor of a host:
 * the operator's login, sshd hardening, the host's name, the cap on what
 * VMs may take, and the KVM check and packages. Each is idempotent and
 * prints created/updated/unchanged like every plan step. */
#ifndef CONVOCATE_HOST_VM_HYPERVISOR_H
#define CONVOCATE_HOST_VM_HYPERVISOR_H

#include <stddef.h>

#include "provision/plan.h"
#include "provision/runner.h"
#include "host/vm/admission.h"

#define HYPERVISOR_CONF_DIR "/etc/convocate-hypervisor"
#define HYPERVISOR_PLEDGE_DIR HYPERVISOR_CONF_DIR "/vms"
#define HYPERVISOR_NEXT_VM HYPERVISOR_CONF_DIR "/next-vm-name"
#define HYPERVISOR_IMAGES_DIR "/var/lib/libvirt/images"
#define SSHD_HARDENING_FILE "/etc/ssh/sshd_config.d/50-convocate-hardening.conf"
#define MACHINE_SLICE_FILE "/etc/systemd/system/machine.slice.d/50-convocate.conf"
#define HYPERVISOR_NAME_LEN 8

/* User username exists (made with a home when missing) and its
 * ~/.ssh/authorized_keys holds pubkey (one line; other lines are kept). */
int hypervisor_user_key(plan *p, runner *r, const char *username, const char *pubkey);

/* The hardening drop-in, checked with `sshd -t` before sshd is told to
 * reload; when sshd -t refuses, the previous file (or none) is put back and
 * the step fails. */
int hypervisor_sshd_hardening(plan *p, runner *r);

/* A random name of 8 lowercase letters, minted once into
 * HYPERVISOR_CONF_DIR/hostname, made the host's name (/etc/hostname, and
 * the running kernel's when it can be) with the line "127.0.1.1 <name>.<domain>
 * <name>" in /etc/hosts. name gets it. */
int hypervisor_hostname(plan *p, runner *r, const char *domain, char name[HYPERVISOR_NAME_LEN + 1]);

/* The name of 8 lowercase letters that path (under HYPERVISOR_CONF_DIR)
 * holds from an earlier run, else a new one written there for the next. */
int hypervisor_minted_name(plan *p, runner *r, const char *path,
                           char name[HYPERVISOR_NAME_LEN + 1]);

/* The host's CPUs, RAM and the size of the filesystem of the images
 * directory, read on the target; and what the VMs there already pledged. */
int hypervisor_totals(plan *p, runner *r, vm_resources *total);
int hypervisor_pledged(plan *p, runner *r, vm_resources *pledged);

/* machine.slice, where libvirt puts its VMs, capped at 90 % of total. */
int hypervisor_machine_slice(plan *p, runner *r, const vm_resources *total);

/* Refuses when /dev/kvm is not a character device: no VM can run there. */
int hypervisor_kvm_check(plan *p, runner *r);

/* qemu, libvirt and virt-install through install's apt step. */
int hypervisor_packages(plan *p, runner *r);

/* Fills out with n random lowercase letters and a NUL (the kernel's CSPRNG). */
int hypervisor_random_name(char *out, size_t n);

#endif
