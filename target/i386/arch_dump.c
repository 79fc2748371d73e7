/* x86 dump facts: ELF class and machine, CORE and QEMU notes per vCPU. */
#include <glib.h>
#include <stddef.h>
#include <string.h>

#include "sysemu/dump-x86.h"

#define EM_386 3
#define EM_X86_64 62
#define ELFCLASS32 1
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define NT_PRSTATUS 1

/* Descriptor sizes (reference 3.9). */
#define PRSTATUS64_SIZE 336
#define PRSTATUS64_PID 32
#define PRSTATUS64_REG 112
#define PRSTATUS32_SIZE 144
#define PRSTATUS32_PID 24
#define PRSTATUS32_REG 72

/* QEMUCPUState: natural alignment, no packing (reference 3.9.3). */
typedef struct QEMUCPUSegment {
    uint32_t selector;
    uint32_t limit;
    uint32_t flags;
    uint32_t pad;
    uint64_t base;
} QEMUCPUSegment;

typedef struct QEMUCPUState {
    uint32_t version;
    uint32_t size;
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
    QEMUCPUSegment cs, ds, es, fs, gs, ss;
    QEMUCPUSegment ldt, tr, gdt, idt;
    uint64_t cr[5];
    uint64_t kernel_gs_base;
} QEMUCPUState;

_Static_assert(sizeof(QEMUCPUSegment) == 24, "QEMUCPUSegment layout");
_Static_assert(sizeof(QEMUCPUState) == 440, "QEMUCPUState size");
_Static_assert(offsetof(QEMUCPUState, rip) == 136, "QEMUCPUState rip");
_Static_assert(offsetof(QEMUCPUState, cs) == 152, "QEMUCPUState cs");
_Static_assert(offsetof(QEMUCPUState, cr) == 392, "QEMUCPUState cr");
_Static_assert(offsetof(QEMUCPUState, kernel_gs_base) == 432, "kernel_gs_base");

static size_t note_size(size_t namesz, size_t descsz)
{
    return 12 + ((namesz + 3) & ~(size_t)3) + ((descsz + 3) & ~(size_t)3);
}

bool dump_arch_get_info(DumpArchInfo *info, const DumpGuestBlockList *blocks,
                        const DumpX86CPUState *cpus, int nr_cpus, Error **errp)
{
    bool lma = nr_cpus > 0 && dump_x86_long_mode(&cpus[0]);

    memset(info, 0, sizeof(*info));
    info->d_machine = lma ? EM_X86_64 : EM_386;
    info->d_endian = ELFDATA2LSB;
    info->d_class = ELFCLASS32;
    if (lma) {
        info->d_class = ELFCLASS64;
    } else {
        /* RAM above 4 GiB (even the BIOS ROM ending at 4 GiB) needs ELF64. */
        for (size_t i = 0; i < blocks->num; i++) {
            if (blocks->blocks[i].target_end > 0xffffffffull) {
                info->d_class = ELFCLASS64;
                break;
            }
        }
    }
    info->page_size = 4096;
    return true;
}

size_t dump_arch_note_size(int d_class, int d_machine, int nr_cpus)
{
    size_t core = note_size(5, d_machine == EM_X86_64 ? PRSTATUS64_SIZE
                                                      : PRSTATUS32_SIZE);

    return (size_t)nr_cpus * (core + note_size(5, sizeof(QEMUCPUState)));
}

static void put32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
    v = GUINT16_TO_LE(v);
    memcpy(p, &v, 2);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    memcpy(p, &v, 8);
}

/* Header and name; returns the descriptor. buf is zero-filled. */
static uint8_t *note_start(uint8_t *buf, const char *name, uint32_t descsz,
                           uint32_t type)
{
    put32(buf, 5);
    put32(buf + 4, descsz);
    put32(buf + 8, type);
    memcpy(buf + 12, name, 5);
    return buf + 20;
}

static size_t write_prstatus64(uint8_t *buf, const DumpX86CPUState *cpu)
{
    const DumpX86CPUState *env = cpu;
    uint8_t *desc = note_start(buf, "CORE", PRSTATUS64_SIZE, NT_PRSTATUS);
    /* Linux's user_regs_struct order; orig_rax is 0 as in QEMU. */
    const uint64_t regs[27] = {
        env->regs[DUMP_R_R15], env->regs[DUMP_R_R14], env->regs[DUMP_R_R13],
        env->regs[DUMP_R_R12], env->regs[DUMP_R_EBP], env->regs[DUMP_R_EBX],
        env->regs[DUMP_R_R11], env->regs[DUMP_R_R10], env->regs[DUMP_R_R9],
        env->regs[DUMP_R_R8], env->regs[DUMP_R_EAX], env->regs[DUMP_R_ECX],
        env->regs[DUMP_R_EDX], env->regs[DUMP_R_ESI], env->regs[DUMP_R_EDI], 0,
        env->eip, env->segs[DUMP_R_CS].selector, env->eflags, env->regs[DUMP_R_ESP],
        env->segs[DUMP_R_SS].selector, env->segs[DUMP_R_FS].base,
        env->segs[DUMP_R_GS].base,
        env->segs[DUMP_R_DS].selector, env->segs[DUMP_R_ES].selector,
        env->segs[DUMP_R_FS].selector, env->segs[DUMP_R_GS].selector,
    };

    put32(desc + PRSTATUS64_PID, cpu->cpu_index + 1);
    for (int i = 0; i < 27; i++) {
        put64(desc + PRSTATUS64_REG + i * 8, regs[i]);
    }
    return note_size(5, PRSTATUS64_SIZE);
}

static size_t write_prstatus32(uint8_t *buf, const DumpX86CPUState *cpu)
{
    const DumpX86CPUState *env = cpu;
    uint8_t *desc = note_start(buf, "CORE", PRSTATUS32_SIZE, NT_PRSTATUS);
    uint8_t *r = desc + PRSTATUS32_REG;

    put32(desc + PRSTATUS32_PID, cpu->cpu_index + 1);
    put32(r + 0, env->regs[DUMP_R_EBX]);
    put32(r + 4, env->regs[DUMP_R_ECX]);
    put32(r + 8, env->regs[DUMP_R_EDX]);
    put32(r + 12, env->regs[DUMP_R_ESI]);
    put32(r + 16, env->regs[DUMP_R_EDI]);
    put32(r + 20, env->regs[DUMP_R_EBP]);
    put32(r + 24, env->regs[DUMP_R_EAX]);
    put16(r + 28, env->segs[DUMP_R_DS].selector);
    put16(r + 32, env->segs[DUMP_R_ES].selector);
    put16(r + 36, env->segs[DUMP_R_FS].selector);
    put16(r + 40, env->segs[DUMP_R_GS].selector);
    put32(r + 48, env->eip);
    put16(r + 52, env->segs[DUMP_R_CS].selector);
    put32(r + 56, env->eflags);
    put32(r + 60, env->regs[DUMP_R_ESP]);
    put16(r + 64, env->segs[DUMP_R_SS].selector);
    return note_size(5, PRSTATUS32_SIZE);
}

static void put_segment(uint8_t *p, const DumpX86Segment *sc)
{
    put32(p + offsetof(QEMUCPUSegment, selector), sc->selector);
    put32(p + offsetof(QEMUCPUSegment, limit), sc->limit);
    put32(p + offsetof(QEMUCPUSegment, flags), sc->flags);
    put64(p + offsetof(QEMUCPUSegment, base), sc->base);
}

static size_t write_qemu_note(uint8_t *buf, const DumpX86CPUState *cpu)
{
    const DumpX86CPUState *env = cpu;
    uint8_t *d = note_start(buf, "QEMU", sizeof(QEMUCPUState), 0);
    static const int gpr[16] = {
        DUMP_R_EAX, DUMP_R_EBX, DUMP_R_ECX, DUMP_R_EDX,
        DUMP_R_ESI, DUMP_R_EDI, DUMP_R_ESP, DUMP_R_EBP,
        DUMP_R_R8, DUMP_R_R9, DUMP_R_R10, DUMP_R_R11,
        DUMP_R_R12, DUMP_R_R13, DUMP_R_R14, DUMP_R_R15,
    };
    static const int seg[6] = {
        DUMP_R_CS, DUMP_R_DS, DUMP_R_ES, DUMP_R_FS, DUMP_R_GS, DUMP_R_SS,
    };
    /* gdt/idt carry base and limit only. */
    DumpX86Segment gdt = { .base = env->gdt.base, .limit = env->gdt.limit };
    DumpX86Segment idt = { .base = env->idt.base, .limit = env->idt.limit };

    put32(d + offsetof(QEMUCPUState, version), 1);
    put32(d + offsetof(QEMUCPUState, size), sizeof(QEMUCPUState));
    for (int i = 0; i < 16; i++) {
        put64(d + offsetof(QEMUCPUState, rax) + i * 8, env->regs[gpr[i]]);
    }
    put64(d + offsetof(QEMUCPUState, rip), env->eip);
    put64(d + offsetof(QEMUCPUState, rflags), env->eflags);
    for (int i = 0; i < 6; i++) {
        put_segment(d + offsetof(QEMUCPUState, cs) + i * 24, &env->segs[seg[i]]);
    }
    put_segment(d + offsetof(QEMUCPUState, ldt), &env->ldt);
    put_segment(d + offsetof(QEMUCPUState, tr), &env->tr);
    put_segment(d + offsetof(QEMUCPUState, gdt), &gdt);
    put_segment(d + offsetof(QEMUCPUState, idt), &idt);
    for (int i = 0; i < 5; i++) {
        put64(d + offsetof(QEMUCPUState, cr) + i * 8, env->cr[i]);
    }
    put64(d + offsetof(QEMUCPUState, kernel_gs_base), env->kernelgsbase);
    return note_size(5, sizeof(QEMUCPUState));
}

size_t dump_arch_write_notes(uint8_t *buf, const DumpX86CPUState *cpus, int nr_cpus,
                             int d_machine)
{
    size_t off = 0;

    for (int i = 0; i < nr_cpus; i++) {
        off += d_machine == EM_X86_64 ? write_prstatus64(buf + off, &cpus[i])
                                      : write_prstatus32(buf + off, &cpus[i]);
    }
    for (int i = 0; i < nr_cpus; i++) {
        off += write_qemu_note(buf + off, &cpus[i]);
    }
    return off;
}
