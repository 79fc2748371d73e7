/* -restore FILE: a machine rebuilt from an ELF vmcore QEMU wrote with paging=false. */
#ifndef SYSTEM_RESTORE_H
#define SYSTEM_RESTORE_H

#include <stdbool.h>

#include "qapi/error.h"

/*
 * Validates the whole file, then creates the RAM blocks with their
 * contents and the vCPUs from the notes. Nothing is created on error.
 */
bool restore_vmcore(const char *path, Error **errp);
/*
 * After fw_cfg and -device vmcoreinfo exist: points the vmcoreinfo device
 * at the guest note's copy in RAM (creating the device if needed).
 */
bool restore_finish(Error **errp);
/* Forgets what restore_vmcore() kept for restore_finish() (failed starts). */
void restore_cleanup(void);

#endif
