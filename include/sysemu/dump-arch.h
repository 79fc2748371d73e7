/* What the target tells the dump: ELF class, machine, endianness, page size. */
#ifndef SYSEMU_DUMP_ARCH_H
#define SYSEMU_DUMP_ARCH_H

#include <stdint.h>

#include "qapi/error.h"
#include "sysemu/dump-memory.h"

typedef struct ArchDumpInfo {
    int d_machine;          /* EM_X86_64 or EM_386 */
    int d_endian;           /* ELFDATA2LSB */
    int d_class;            /* ELFCLASS64 or ELFCLASS32 */
    uint32_t page_size;     /* 4096 */
    uint64_t phys_base;     /* 0, or NUMBER(phys_base) from VMCOREINFO */
} ArchDumpInfo;

/* Fills info from vCPU 0 and the blocks (reference 3.4). */
bool dump_arch_get_info(ArchDumpInfo *info, const DumpGuestBlockList *blocks,
                       Error **errp);
/* Bytes of CPU notes for nr_cpus vCPUs (reference 3.9). */
size_t dump_arch_note_size(int d_class, int d_machine, int nr_cpus);

/*
 * Writes the CPU part of the note area into buf (dump_arch_note_size bytes,
 * zero-filled by the caller): a CORE note per vCPU, then a QEMU note per
 * vCPU (reference 3.9). Returns the bytes written.
 */
struct X86CPU;
size_t dump_arch_write_notes(uint8_t *buf, struct X86CPU *const *cpus, int nr_cpus,
                       int d_machine);

#endif
