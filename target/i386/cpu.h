/* x86 vCPU state: the registers a dump records or needs to walk the page tables. */
#ifndef TARGET_I386_CPU_H
#define TARGET_I386_CPU_H

#include <stdbool.h>
#include <stdint.h>

enum { R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI, R_EDI,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15, CPU_NB_REGS };

/* Segment register order, as in QEMU's CPUX86State.segs[]. */
enum { R_ES, R_CS, R_SS, R_DS, R_FS, R_GS, R_NB_SEGS };

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

typedef struct SegmentCache {
    uint32_t selector;
    uint64_t base;
    uint32_t limit;       /* expanded byte limit */
    uint32_t flags;
} SegmentCache;

typedef struct CPUX86State {
    uint64_t regs[CPU_NB_REGS];  /* indexed by R_EAX ... R_R15 */
    uint64_t eip;
    uint64_t eflags;
    SegmentCache segs[R_NB_SEGS];
    SegmentCache ldt;
    SegmentCache tr;
    SegmentCache gdt;            /* base and limit only */
    SegmentCache idt;            /* base and limit only */
    uint64_t cr[5];              /* cr0 .. cr4 (cr1 unused, kept for the note) */
    uint64_t cr8;
    uint64_t efer;
    uint64_t kernelgsbase;
    uint32_t a20_mask;           /* ~0 when A20 is enabled (reset: enabled) */
    /* Not in ELF notes; the Windows CONTEXT records them. */
    uint32_t mxcsr;
    uint64_t dr[8];              /* dr4/dr5 alias dr6/dr7 on hardware; kept as QEMU */
} CPUX86State;

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
