/* -restore FILE: a machine rebuilt from an ELF vmcore (paging=false) or a kdump file. */
#ifndef SYSTEM_RESTORE_H
#define SYSTEM_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"

/*
 * The default of -restore-max-ram. A vmcore's RAM is read in full and a
 * later dump writes it all out again; 64 GiB is more than most guests that
 * get dumped and still a bounded amount of work (about a minute of reading)
 * for a file of unknown origin. Larger vmcores need -restore-max-ram.
 */
#define RESTORE_DEFAULT_MAX_RAM (64ULL << 30)
/* The largest -restore-max-ram: the machine's own RAM limit. */
#define RESTORE_MAX_RAM_LIMIT   (16ULL << 40)

/*
 * Recognises the file by content (system/vmcore-probe.h): an ELF vmcore or
 * a kdump-compressed file (system/kdump-read.h); anything else is refused
 * saying what it is. Validates the whole file, then creates the RAM blocks with their
 * contents and the vCPUs from the notes. Nothing is created on error.
 * max_ram: the most memory the file may describe (0: the default).
 */
bool restore_vmcore(const char *path, uint64_t max_ram, Error **errp);
/*
 * After fw_cfg and -device vmcoreinfo exist: points the vmcoreinfo device
 * at the guest note's copy in RAM (creating the device if needed).
 */
bool restore_finish(Error **errp);
/*
 * guestdump-convert: restore_vmcore() maps the file (private, copy-on-write)
 * as guest RAM instead of copying it, so memory stays bounded and a sparse
 * file stays sparse. The file must not change while the machine exists.
 */
void restore_set_mapped(bool map);
/* Forgets what restore_vmcore() kept for restore_finish() (failed starts). */
void restore_cleanup(void);

#endif
