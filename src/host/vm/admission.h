/* Admission of a new VM on a hypervisor (SPEC 11): what the VMs already
 * there were promised (their pledges) plus the request must fit 90 % of the
 * host's CPUs, RAM and image disk, so the host itself keeps a tenth. A
 * refusal names the resource and the numbers. Pure, for unit tests; the
 * totals and pledges are read on the target by create_vm.c. */
#ifndef CONVOCATE_HOST_VM_ADMISSION_H
#define CONVOCATE_HOST_VM_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

#define VM_ADMIT_PERCENT 90

typedef struct {
    long cpu;
    long ram_mb;
    long disk_gb;
} vm_resources;

/* 0 when pledged + request fits every resource's 90 %; -1 with why, e.g.
 * "admission denied: ram 30720 MB pledged + 4096 requested > 90% of 32768
 * MB (29491 MB)", naming every resource that does not fit. */
int vm_admit(const vm_resources *total, const vm_resources *pledged, const vm_resources *request,
             char *why, size_t whylen);

/* A pledge file: "cpu=N\nram_mb=N\ndisk_gb=N\n" (written by create-vm for
 * each VM it makes). 0, or -1 when a line is unknown, a number is bad or a
 * key is missing. */
int vm_pledge_parse(const char *text, vm_resources *out);
/* The text of a pledge file; its length (snprintf's). */
int vm_pledge_format(const vm_resources *r, char *buf, size_t size);

/* "MemTotal: N kB" of /proc/meminfo in MB; -1 when absent. */
long vm_meminfo_total_mb(const char *meminfo);
/* The size column of `df -P -k PATH` in whole GB; -1 when unreadable. */
long vm_df_total_gb(const char *df_output);

#endif
