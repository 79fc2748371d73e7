/* x86 vCPU state: the registers a dump records or needs to walk the page tables. */
#ifndef TARGET_I386_CPU_H
#define TARGET_I386_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "sysemu/dump-host.h"

enum { R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI, R_EDI,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15, CPU_NB_REGS };

/* Segment register order, as in QEMU's CPUX86State.segs[]. */
enum { R_ES, R_CS, R_SS, R_DS, R_FS, R_GS, R_NB_SEGS };

_Static_assert((int)R_R15 == (int)DUMP_R_R15 &&
               (int)CPU_NB_REGS == (int)DUMP_CPU_NB_REGS, "register order");
_Static_assert((int)R_GS == (int)DUMP_R_GS &&
               (int)R_NB_SEGS == (int)DUMP_R_NB_SEGS, "segment order");

#define CR0_PE_MASK   (1u << 0)
#define CR0_ET_MASK   (1u << 4)
#define CR0_PG_MASK   (1u << 31)
#define CR4_PSE_MASK  (1u << 4)
#define CR4_PAE_MASK  (1u << 5)
#define CR4_LA57_MASK (1u << 12)
#define MSR_EFER_LME  (1u << 8)
#define MSR_EFER_LMA  (1u << 10)

/* Descriptor flags as QEMU keeps them (high dword of the descriptor, bits 8-23). */
#define DESC_L_SHIFT 21
#define DESC_L_MASK  (1u << DESC_L_SHIFT)

/*
 * The machine keeps vCPU state in the dump module's own layout, so handing
 * it to a dump (system/dump-host.c) is a plain copy.
 */
typedef DumpX86Segment SegmentCache;
typedef DumpX86CPUState CPUX86State;

typedef struct X86CPU {
    int cpu_index;               /* 0-based; pr_pid in the notes is index + 1 */
    CPUX86State env;
} X86CPU;

static inline bool x86_cpu_long_mode(const CPUX86State *env)
{
    return (env->efer & MSR_EFER_LMA) != 0;
}

static inline bool x86_cpu_paging_enabled(const CPUX86State *env)
{
    return (env->cr[0] & CR0_PG_MASK) != 0;
}

/* QEMU's x86 reset state (real mode, CS base 0xffff0000, EIP 0xfff0). */
void x86_cpu_reset(X86CPU *cpu);

#endif
