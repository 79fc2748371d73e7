/* What the x86 target tells the dump: ELF class and machine, CPU notes, CR/EFER bits. */
#ifndef SYSEMU_DUMP_X86_H
#define SYSEMU_DUMP_X86_H

#include <stdint.h>

#include "qapi/error.h"
#include "sysemu/dump-host.h"
#include "sysemu/dump-memory.h"

/* The x86 bits the notes, the walk and win-dmp look at (the module's own names). */
#define DUMP_X86_CR0_PG    (1u << 31)
#define DUMP_X86_CR4_PSE   (1u << 4)
#define DUMP_X86_CR4_PAE   (1u << 5)
#define DUMP_X86_CR4_LA57  (1u << 12)
#define DUMP_X86_EFER_LMA  (1u << 10)

static inline bool dump_x86_long_mode(const DumpX86CPUState *env)
{
    return (env->efer & DUMP_X86_EFER_LMA) != 0;
}

static inline bool dump_x86_paging_enabled(const DumpX86CPUState *env)
{
    return (env->cr[0] & DUMP_X86_CR0_PG) != 0;
}

typedef struct DumpArchInfo {
    int d_machine;          /* EM_X86_64 or EM_386 */
    int d_endian;           /* ELFDATA2LSB */
    int d_class;            /* ELFCLASS64 or ELFCLASS32 */
    uint32_t page_size;     /* 4096 */
    uint64_t phys_base;     /* 0, or NUMBER(phys_base) from VMCOREINFO */
} DumpArchInfo;

/* Fills info from vCPU 0 (cpus[0]; none: 32-bit) and the blocks (reference 3.4). */
bool dump_arch_get_info(DumpArchInfo *info, const DumpGuestBlockList *blocks,
                        const DumpX86CPUState *cpus, int nr_cpus, Error **errp);
/* Bytes of CPU notes for nr_cpus vCPUs (reference 3.9). */
size_t dump_arch_note_size(int d_class, int d_machine, int nr_cpus);

/*
 * Writes the CPU part of the note area into buf (dump_arch_note_size bytes,
 * zero-filled by the caller): a CORE note per vCPU, then a QEMU note per
 * vCPU (reference 3.9). Returns the bytes written.
 */
size_t dump_arch_write_notes(uint8_t *buf, const DumpX86CPUState *cpus, int nr_cpus,
                             int d_machine);

#endif
