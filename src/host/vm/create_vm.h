/* `convocate-host create-vm` (SPEC 11): make a KVM hypervisor of a host
 * and boot a fresh Ubuntu VM on it, ready for install and init-agent. */
#ifndef CONVOCATE_HOST_VM_CREATE_VM_H
#define CONVOCATE_HOST_VM_CREATE_VM_H

#include <stdbool.h>

/* argv[0] is "create-vm"; returns the exit status (2 for usage errors). */
int create_vm_main(int argc, char **argv, bool verbose);

#endif
