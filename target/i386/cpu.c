/* x86 vCPU: QEMU 7.2 reset state of a qemu64 vCPU, and register access by name. */
#include <stddef.h>
#include <string.h>

#include <glib.h>

#include "qapi/error.h"
#include "system/machine-internal.h"

#include "target/i386/cpu.h"

/*
 * CPUID.1 EAX of QEMU's qemu64 model (family 15, model 107, stepping 1);
 * real QEMU 7.2 shows it in EDX after reset (`info registers`: 00060fb1).
 */
#define QEMU64_CPUID_VERSION 0x00060fb1u

/* Flags as QEMU's `info registers` prints them after reset. */
#define RESET_CODE_FLAGS 0x9b00u   /* present, S, code, readable, accessed */
#define RESET_DATA_FLAGS 0x9300u   /* present, S, data, writable, accessed */
#define RESET_LDT_FLAGS  0x8200u
#define RESET_TR_FLAGS   0x8b00u   /* busy 32-bit TSS */

static void set_seg(SegmentCache *sc, uint32_t selector, uint64_t base,
                    uint32_t limit, uint32_t flags)
{
    sc->selector = selector;
    sc->base = base;
    sc->limit = limit;
    sc->flags = flags;
}

void x86_cpu_reset(X86CPU *cpu)
{
    CPUX86State *env = &cpu->env;

    memset(env, 0, sizeof(*env));
    env->regs[R_EDX] = QEMU64_CPUID_VERSION;
    env->eip = 0xfff0;
    env->eflags = 0x2;      /* bit 1 always reads as one */
    /* CD and NW set, ET set: the cache-disabled power-on value */
    env->cr[0] = 0x60000010;

    /* The first fetch comes from 0xfffffff0: the BIOS reset vector. */
    set_seg(&env->segs[R_CS], 0xf000, 0xffff0000, 0xffff, RESET_CODE_FLAGS);
    for (int i = 0; i < R_NB_SEGS; i++) {
        if (i != R_CS) {
            set_seg(&env->segs[i], 0, 0, 0xffff, RESET_DATA_FLAGS);
        }
    }
    set_seg(&env->ldt, 0, 0, 0xffff, RESET_LDT_FLAGS);
    set_seg(&env->tr, 0, 0, 0xffff, RESET_TR_FLAGS);
    set_seg(&env->gdt, 0, 0, 0xffff, 0);
    set_seg(&env->idt, 0, 0, 0xffff, 0);
    env->a20_mask = ~0u;
    /* SSE exceptions masked; DR6/DR7 reserved bits read as one. */
    env->mxcsr = 0x1f80;
    env->dr[6] = 0xffff0ff0;
    env->dr[7] = 0x400;
}

/*
 * Register access by name for tests, QMP and restore. A selector is stored
 * as given: no descriptor is loaded, so tests set base/limit/flags too.
 */
typedef enum RegKind {
    REG_U64, REG_U32, REG_SEL, REG_BASE, REG_LIMIT, REG_FLAGS, REG_A20,
} RegKind;

typedef struct RegDesc {
    const char *name;
    RegKind kind;
    size_t offset;          /* of the integer or SegmentCache within CPUX86State */
} RegDesc;

#define ENV_OFF(field) offsetof(CPUX86State, field)
#define SEG_REGS(prefix, field) \
    { prefix, REG_SEL, ENV_OFF(field) }, \
    { prefix "_base", REG_BASE, ENV_OFF(field) }, \
    { prefix "_limit", REG_LIMIT, ENV_OFF(field) }, \
    { prefix "_flags", REG_FLAGS, ENV_OFF(field) }

static const RegDesc reg_table[] = {
    { "rax", REG_U64, ENV_OFF(regs[R_EAX]) },
    { "rbx", REG_U64, ENV_OFF(regs[R_EBX]) },
    { "rcx", REG_U64, ENV_OFF(regs[R_ECX]) },
    { "rdx", REG_U64, ENV_OFF(regs[R_EDX]) },
    { "rsi", REG_U64, ENV_OFF(regs[R_ESI]) },
    { "rdi", REG_U64, ENV_OFF(regs[R_EDI]) },
    { "rbp", REG_U64, ENV_OFF(regs[R_EBP]) },
    { "rsp", REG_U64, ENV_OFF(regs[R_ESP]) },
    { "r8", REG_U64, ENV_OFF(regs[R_R8]) },
    { "r9", REG_U64, ENV_OFF(regs[R_R9]) },
    { "r10", REG_U64, ENV_OFF(regs[R_R10]) },
    { "r11", REG_U64, ENV_OFF(regs[R_R11]) },
    { "r12", REG_U64, ENV_OFF(regs[R_R12]) },
    { "r13", REG_U64, ENV_OFF(regs[R_R13]) },
    { "r14", REG_U64, ENV_OFF(regs[R_R14]) },
    { "r15", REG_U64, ENV_OFF(regs[R_R15]) },
    { "rip", REG_U64, ENV_OFF(eip) },
    { "rflags", REG_U64, ENV_OFF(eflags) },
    SEG_REGS("es", segs[R_ES]),
    SEG_REGS("cs", segs[R_CS]),
    SEG_REGS("ss", segs[R_SS]),
    SEG_REGS("ds", segs[R_DS]),
    SEG_REGS("fs", segs[R_FS]),
    SEG_REGS("gs", segs[R_GS]),
    SEG_REGS("ldt", ldt),
    SEG_REGS("tr", tr),
    { "gdt_base", REG_BASE, ENV_OFF(gdt) },
    { "gdt_limit", REG_LIMIT, ENV_OFF(gdt) },
    { "idt_base", REG_BASE, ENV_OFF(idt) },
    { "idt_limit", REG_LIMIT, ENV_OFF(idt) },
    { "cr0", REG_U64, ENV_OFF(cr[0]) },
    { "cr2", REG_U64, ENV_OFF(cr[2]) },
    { "cr3", REG_U64, ENV_OFF(cr[3]) },
    { "cr4", REG_U64, ENV_OFF(cr[4]) },
    { "cr8", REG_U64, ENV_OFF(cr8) },
    { "efer", REG_U64, ENV_OFF(efer) },
    { "kernel_gs_base", REG_U64, ENV_OFF(kernelgsbase) },
    { "a20", REG_A20, ENV_OFF(a20_mask) },
    { "mxcsr", REG_U32, ENV_OFF(mxcsr) },
    { "dr0", REG_U64, ENV_OFF(dr[0]) },
    { "dr1", REG_U64, ENV_OFF(dr[1]) },
    { "dr2", REG_U64, ENV_OFF(dr[2]) },
    { "dr3", REG_U64, ENV_OFF(dr[3]) },
    { "dr4", REG_U64, ENV_OFF(dr[4]) },
    { "dr5", REG_U64, ENV_OFF(dr[5]) },
    { "dr6", REG_U64, ENV_OFF(dr[6]) },
    { "dr7", REG_U64, ENV_OFF(dr[7]) },
};

static const RegDesc *find_reg(const char *name, Error **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(reg_table); i++) {
        if (!strcmp(reg_table[i].name, name)) {
            return &reg_table[i];
        }
    }
    error_setg(errp, "unknown x86 register '%s'", name);
    return NULL;
}

bool x86_cpu_set_reg(X86CPU *cpu, const char *name, uint64_t value, Error **errp)
{
    const RegDesc *r = find_reg(name, errp);
    uint8_t *base = (uint8_t *)&cpu->env;
    SegmentCache *sc;

    if (!r) {
        return false;
    }
    sc = (SegmentCache *)(base + r->offset);
    switch (r->kind) {
    case REG_U64:
        *(uint64_t *)(base + r->offset) = value;
        return true;
    case REG_BASE:
        sc->base = value;
        return true;
    case REG_A20:
        if (value > 1) {
            error_setg(errp, "register 'a20' takes 0 or 1");
            return false;
        }
        /* QEMU masks address bit 20 while the gate is closed. */
        cpu->env.a20_mask = value ? ~0u : ~(1u << 20);
        return true;
    default:
        break;
    }
    if (value > UINT32_MAX ||
        (r->kind == REG_SEL && value > UINT16_MAX)) {
        error_setg(errp, "value 0x%llx is too large for register '%s'",
                   (unsigned long long)value, name);
        return false;
    }
    if (r->kind == REG_U32) {
        *(uint32_t *)(base + r->offset) = value;
    } else if (r->kind == REG_SEL) {
        sc->selector = value;
    } else if (r->kind == REG_LIMIT) {
        sc->limit = value;
    } else {
        sc->flags = value;
    }
    return true;
}

bool x86_cpu_get_reg(const X86CPU *cpu, const char *name, uint64_t *value,
                     Error **errp)
{
    const RegDesc *r = find_reg(name, errp);
    const uint8_t *base = (const uint8_t *)&cpu->env;
    const SegmentCache *sc;

    if (!r) {
        return false;
    }
    sc = (const SegmentCache *)(base + r->offset);
    switch (r->kind) {
    case REG_U64:
        *value = *(const uint64_t *)(base + r->offset);
        break;
    case REG_U32:
        *value = *(const uint32_t *)(base + r->offset);
        break;
    case REG_SEL:
        *value = sc->selector;
        break;
    case REG_BASE:
        *value = sc->base;
        break;
    case REG_LIMIT:
        *value = sc->limit;
        break;
    case REG_FLAGS:
        *value = sc->flags;
        break;
    case REG_A20:
        *value = (cpu->env.a20_mask & (1u << 20)) != 0;
        break;
    }
    return true;
}

const char *const *x86_cpu_reg_names(void)
{
    static const char *names[G_N_ELEMENTS(reg_table) + 1];

    if (!names[0]) {
        for (size_t i = 0; i < G_N_ELEMENTS(reg_table); i++) {
            names[i] = reg_table[i].name;
        }
    }
    return names;
}
