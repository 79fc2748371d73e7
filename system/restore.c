/* -restore: memory, vCPUs and vmcoreinfo note rebuilt from an ELF or kdump vmcore. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "hw/fw_cfg.h"
#include "hw/vmcoreinfo.h"
#include "qemu/bswap.h"
#include "sysemu/cpus.h"
#include "sysemu/physmem.h"
#include "system/machine-internal.h"
#include "system/kdump-read.h"
#include "system/restore.h"
#include "system/vmcore-probe.h"

#define EM_386      3
#define EM_X86_64   62
#define ET_CORE     4
#define PT_LOAD     1
#define PT_NOTE     4
#define PN_XNUM     0xffff
#define NT_PRSTATUS 1

/* Bounds on what a file may make us do; QEMU never comes near them. */
#define RESTORE_MAX_SEGMENTS 65536
#define RESTORE_MAX_NOTES    (64u << 20)
#define RESTORE_MAX_PADDR    (1ULL << 52)    /* x86's widest MAXPHYADDR */
#define RESTORE_CHUNK        (4u << 20)
/* Region ids of mapped segments: one each, above the machine's own (1-3). */
#define RESTORE_MAPPED_REGION0 16

#define PRSTATUS64_SIZE 336
#define PRSTATUS32_SIZE 144
#define QEMU_NOTE_MIN   432     /* before kernel_gs_base was appended (QEMU 3.0) */

typedef struct Segment {
    uint64_t offset, paddr, filesz, memsz;
} Segment;

typedef struct Note {
    char name[16];
    uint32_t type;
    const uint8_t *desc;
    uint32_t descsz;
    const uint8_t *raw;         /* the note from its header on */
    size_t raw_size;            /* header + padded name + padded desc */
} Note;

typedef struct Vmcore {
    int fd;
    uint64_t file_size;
    bool is64;
    uint16_t machine;
    GArray *segs;               /* Segment, sorted by paddr */
    uint8_t *notes;             /* all PT_NOTE contents, concatenated */
    GArray *note_list;          /* Note */
    uint64_t max_ram;           /* -restore-max-ram */
    bool map;                   /* restore_set_mapped(): RAM is the file, mapped */
    KdumpReader *kdump;         /* a kdump file: segments are its page runs */
} Vmcore;

static bool restore_mapped;

void restore_set_mapped(bool map)
{
    restore_mapped = map;
}


static bool read_at(Vmcore *vc, uint64_t off, void *buf, uint64_t len, const char *what,
                    Error **errp)
{
    return vmcore_pread(vc->fd, vc->file_size, off, buf, len, "vmcore", what, errp);
}

static int seg_cmp(gconstpointer a, gconstpointer b)
{
    const Segment *x = a, *y = b;

    return x->paddr < y->paddr ? -1 : x->paddr > y->paddr;
}

static int seg_offset_cmp(gconstpointer a, gconstpointer b)
{
    const Segment *x = a, *y = b;

    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * QEMU writes each byte of RAM once, so PT_LOADs never share file bytes.
 * Files that do are refused: each segment becomes its own guest RAM, so
 * a few KiB of file aimed at by many segments would otherwise become
 * gigabytes of host memory.
 */
static bool check_file_ranges(Vmcore *vc, Error **errp)
{
    g_autoptr(GArray) by_off = g_array_copy(vc->segs);

    g_array_sort(by_off, seg_offset_cmp);
    for (guint i = 1; i < by_off->len; i++) {
        const Segment *prev = &g_array_index(by_off, Segment, i - 1);
        const Segment *s = &g_array_index(by_off, Segment, i);

        if (prev->offset + prev->filesz > s->offset) {
            error_setg(errp, "segments at 0x%llx and 0x%llx share file bytes at "
                       "offset 0x%llx (QEMU writes each byte of memory once)",
                       (unsigned long long)prev->paddr, (unsigned long long)s->paddr,
                       (unsigned long long)s->offset);
            return false;
        }
    }
    return true;
}

/*
 * A Linux /proc/vmcore (what kdump saves) describes the kernel image twice:
 * a PT_LOAD for its text mapping and the RAM segment around it, both with
 * the same physical range and their own copy of the bytes. A segment that
 * lies wholly inside another is that alias and is dropped (the RAM segment
 * holds the same memory); a partial overlap is still refused below. QEMU
 * and guestdump never write either.
 */
static void drop_alias_segments(Vmcore *vc)
{
    guint keep = 0;

    for (guint i = 0; i < vc->segs->len; i++) {
        const Segment *s = &g_array_index(vc->segs, Segment, i);

        if (keep > 0) {
            Segment *prev = &g_array_index(vc->segs, Segment, keep - 1);

            if (s->paddr + s->memsz <= prev->paddr + prev->memsz) {
                continue;               /* s inside prev */
            }
            if (s->paddr == prev->paddr) {
                *prev = *s;             /* prev inside s (same start, shorter) */
                continue;
            }
        }
        g_array_index(vc->segs, Segment, keep++) = *s;
    }
    g_array_set_size(vc->segs, keep);
}

static bool parse_notes(Vmcore *vc, uint64_t total, Error **errp)
{
    uint64_t off = 0;

    vc->note_list = g_array_new(FALSE, TRUE, sizeof(Note));
    /* Each note consumes at least 12 bytes, so the loop is bounded by total / 12. */
    while (off + 12 <= total) {
        const uint8_t *h = vc->notes + off;
        uint32_t namesz = ldl_le_p(h), descsz = ldl_le_p(h + 4);
        uint64_t name_pad = ((uint64_t)namesz + 3) & ~3ULL;
        uint64_t desc_pad = ((uint64_t)descsz + 3) & ~3ULL;
        Note n = { 0 };

        if (namesz == 0 && descsz == 0 && ldl_le_p(h + 8) == 0) {
            break;      /* Linux's empty terminating note, or zero padding */
        }
        if (12 + name_pad + desc_pad > total - off) {
            error_setg(errp, "vmcore note at offset 0x%llx claims %u+%u bytes, more "
                       "than the note segment holds", (unsigned long long)off, namesz,
                       descsz);
            return false;
        }
        memcpy(n.name, h + 12, MIN(namesz, sizeof(n.name) - 1));
        if (namesz > 0 && namesz <= sizeof(n.name)) {
            n.name[namesz - 1] = '\0';
        }
        n.type = ldl_le_p(h + 8);
        n.desc = h + 12 + name_pad;
        n.descsz = descsz;
        n.raw = h;
        n.raw_size = 12 + name_pad + desc_pad;
        g_array_append_val(vc->note_list, n);
        off += n.raw_size;
    }
    return true;
}

/* Sorted segments must not overlap, and their memory must fit -restore-max-ram. */
static bool check_segments(Vmcore *vc, Error **errp)
{
    uint64_t total = 0;

    for (guint i = 0; i < vc->segs->len; i++) {
        const Segment *s = &g_array_index(vc->segs, Segment, i);
        if (i > 0) {
            const Segment *prev = &g_array_index(vc->segs, Segment, i - 1);
            if (prev->paddr + prev->memsz > s->paddr) {
                error_setg(errp, "segments at 0x%llx and 0x%llx overlap",
                           (unsigned long long)prev->paddr,
                           (unsigned long long)s->paddr);
                return false;
            }
        }
        total += s->memsz;
    }
    if (total > vc->max_ram) {
        error_setg(errp, "vmcore describes %llu MiB of memory, more than the %llu "
                   "MiB -restore-max-ram allows (raise it with "
                   "-restore-max-ram SIZE)", (unsigned long long)(total >> 20),
                   (unsigned long long)(vc->max_ram >> 20));
        return false;
    }
    return true;
}

/*
 * A kdump file as the segments and notes an ELF vmcore would give: one
 * segment per run of pages the file holds (the second bitmap), so pages a
 * filtered dump left out (makedumpfile -d) become holes in guest-physical
 * memory, never zero-filled RAM. The header's layout gives the ELF machine
 * (QEMU picks both from vCPU 0's long mode).
 */
static bool parse_kdump(Vmcore *vc, Error **errp)
{
    const KdumpRun *runs;
    const uint8_t *notes;
    size_t nruns, note_len;
    uint64_t pages;

    vc->kdump = kdump_reader_open(vc->fd, RESTORE_MAX_SEGMENTS, errp);
    if (!vc->kdump) {
        return false;
    }
    vc->is64 = kdump_reader_class64(vc->kdump);
    vc->machine = vc->is64 ? EM_X86_64 : EM_386;
    runs = kdump_reader_runs(vc->kdump, &nruns, &pages);
    if (nruns == 0) {
        error_setg(errp, "kdump file has no memory (its second bitmap is empty)");
        return false;
    }
    vc->segs = g_array_new(FALSE, TRUE, sizeof(Segment));
    for (size_t i = 0; i < nruns; i++) {
        Segment s = { 0, runs[i].pfn * KDUMP_READ_PAGE_SIZE,
                      runs[i].count * KDUMP_READ_PAGE_SIZE,
                      runs[i].count * KDUMP_READ_PAGE_SIZE };
        g_array_append_val(vc->segs, s);
    }
    if (!check_segments(vc, errp)) {
        return false;
    }
    notes = kdump_reader_notes(vc->kdump, &note_len);
    vc->notes = g_malloc0(note_len + 1);
    if (note_len) {
        memcpy(vc->notes, notes, note_len);
    }
    return parse_notes(vc, note_len, errp);
}

static bool parse_header(Vmcore *vc, Error **errp)
{
    uint8_t eh[64];
    uint64_t phoff, shoff;
    uint32_t phnum;
    uint16_t phentsize, ehsize_needed;
    g_autofree uint8_t *ph = NULL;
    uint64_t note_total = 0;
    GArray *note_ranges = g_array_new(FALSE, FALSE, sizeof(Segment));

    if (!read_at(vc, 0, eh, 16, "ELF identification", errp)) {
        goto fail;
    }
    if (memcmp(eh, "\177ELF", 4)) {
        error_setg(errp, "not an ELF file");
        goto fail;
    }
    if (eh[4] != 1 && eh[4] != 2) {
        error_setg(errp, "unsupported ELF class %u (want ELFCLASS32 or ELFCLASS64)",
                   eh[4]);
        goto fail;
    }
    if (eh[5] != 1) {
        error_setg(errp, "unsupported ELF data encoding %u (want little-endian)", eh[5]);
        goto fail;
    }
    vc->is64 = eh[4] == 2;
    ehsize_needed = vc->is64 ? 64 : 52;
    if (!read_at(vc, 0, eh, ehsize_needed, "ELF header", errp)) {
        goto fail;
    }
    if (lduw_le_p(eh + 16) != ET_CORE) {
        error_setg(errp, "ELF type %u is not ET_CORE: not a vmcore", lduw_le_p(eh + 16));
        goto fail;
    }
    vc->machine = lduw_le_p(eh + 18);
    if (vc->machine != EM_X86_64 && vc->machine != EM_386) {
        error_setg(errp, "ELF machine %u is not x86 (EM_386 or EM_X86_64)", vc->machine);
        goto fail;
    }
    if (vc->is64) {
        phoff = ldq_le_p(eh + 32);
        shoff = ldq_le_p(eh + 40);
        phentsize = lduw_le_p(eh + 54);
        phnum = lduw_le_p(eh + 56);
    } else {
        phoff = ldl_le_p(eh + 28);
        shoff = ldl_le_p(eh + 32);
        phentsize = lduw_le_p(eh + 42);
        phnum = lduw_le_p(eh + 44);
    }
    if (phentsize != (vc->is64 ? 56 : 32)) {
        error_setg(errp, "program header size %u is wrong for this ELF class",
                   phentsize);
        goto fail;
    }
    if (phnum == PN_XNUM) {
        /* the real count is in section header 0's sh_info */
        uint8_t sh[64];
        if (!read_at(vc, shoff, sh, vc->is64 ? 64 : 40, "section header 0", errp)) {
            goto fail;
        }
        phnum = ldl_le_p(sh + (vc->is64 ? 44 : 28));
    }
    if (phnum == 0 || phnum > RESTORE_MAX_SEGMENTS) {
        error_setg(errp, "vmcore has %u program headers (1 to %u accepted)", phnum,
                   RESTORE_MAX_SEGMENTS);
        goto fail;
    }
    ph = g_malloc((size_t)phnum * phentsize);
    if (!read_at(vc, phoff, ph, (uint64_t)phnum * phentsize, "program headers", errp)) {
        goto fail;
    }
    {
        /*
         * A process core (gdb, the kernel's core_pattern) describes virtual
         * memory: its PT_LOADs all have physical address 0. A vmcore has
         * at most one segment there.
         */
        uint32_t at_zero = 0;

        for (uint32_t i = 0; i < phnum; i++) {
            const uint8_t *p = ph + (size_t)i * phentsize;
            uint64_t paddr = vc->is64 ? ldq_le_p(p + 24) : ldl_le_p(p + 12);
            uint64_t memsz = vc->is64 ? ldq_le_p(p + 40) : ldl_le_p(p + 20);

            at_zero += ldl_le_p(p) == PT_LOAD && paddr == 0 && memsz != 0;
        }
        if (at_zero > 1) {
            error_setg(errp, "%u PT_LOAD segments at physical address 0: a process "
                       "core dump (gdb, core_pattern), not a vmcore of a machine",
                       at_zero);
            goto fail;
        }
    }
    vc->segs = g_array_new(FALSE, TRUE, sizeof(Segment));
    for (uint32_t i = 0; i < phnum; i++) {
        const uint8_t *p = ph + (size_t)i * phentsize;
        uint32_t type = ldl_le_p(p);
        Segment s;

        if (vc->is64) {
            s = (Segment) { ldq_le_p(p + 8), ldq_le_p(p + 24), ldq_le_p(p + 32),
                            ldq_le_p(p + 40) };
        } else {
            s = (Segment) { ldl_le_p(p + 4), ldl_le_p(p + 12), ldl_le_p(p + 16),
                            ldl_le_p(p + 20) };
        }
        if (type != PT_LOAD && type != PT_NOTE) {
            continue;
        }
        if (s.offset > vc->file_size || s.filesz > vc->file_size - s.offset) {
            error_setg(errp, "vmcore is truncated: segment %u needs bytes up to 0x%llx, "
                       "the file has 0x%llx", i,
                       (unsigned long long)(s.offset + s.filesz),
                       (unsigned long long)vc->file_size);
            goto fail;
        }
        if (type == PT_NOTE) {
            if (s.filesz > RESTORE_MAX_NOTES - note_total) {
                error_setg(errp, "vmcore notes exceed %u bytes", RESTORE_MAX_NOTES);
                goto fail;
            }
            note_total += s.filesz;
            g_array_append_val(note_ranges, s);
            continue;
        }
        if (s.memsz == 0) {
            continue;
        }
        if (s.filesz != s.memsz) {
            /* paging=true dumps clamp PT_LOADs; they do not describe RAM 1:1 */
            error_setg(errp, "segment %u has filesz 0x%llx != memsz 0x%llx: restore "
                       "needs a dump taken with paging=false", i,
                       (unsigned long long)s.filesz, (unsigned long long)s.memsz);
            goto fail;
        }
        if (s.paddr + s.memsz < s.paddr) {
            error_setg(errp, "segment %u wraps around the address space", i);
            goto fail;
        }
        if (s.paddr + s.memsz > RESTORE_MAX_PADDR) {
            /*
             * No x86 guest has RAM there (MAXPHYADDR is at most 52), so this
             * is no guest's vmcore. It also caps what a few KiB of file can
             * make a kdump write: its bitmap is sized by the highest address.
             */
            error_setg(errp, "segment %u ends at 0x%llx, beyond x86's 52-bit physical "
                       "address space", i, (unsigned long long)(s.paddr + s.memsz));
            goto fail;
        }
        g_array_append_val(vc->segs, s);
    }
    if (vc->segs->len == 0) {
        error_setg(errp, "vmcore has no memory (no PT_LOAD segment)");
        goto fail;
    }
    if (!check_file_ranges(vc, errp)) {
        goto fail;
    }
    g_array_sort(vc->segs, seg_cmp);
    drop_alias_segments(vc);
    if (!check_segments(vc, errp)) {
        goto fail;
    }
    vc->notes = g_malloc0(note_total + 1);
    {
        uint64_t at = 0;
        for (guint i = 0; i < note_ranges->len; i++) {
            const Segment *s = &g_array_index(note_ranges, Segment, i);
            if (!read_at(vc, s->offset, vc->notes + at, s->filesz, "notes", errp)) {
                goto fail;
            }
            at += s->filesz;
        }
    }
    g_array_free(note_ranges, TRUE);
    return parse_notes(vc, note_total, errp);

fail:
    g_array_free(note_ranges, TRUE);
    return false;
}

/* QEMUCPUState segment entry: selector, limit, flags, pad, base. */
static void load_seg(SegmentCache *sc, const uint8_t *p)
{
    sc->selector = ldl_le_p(p);
    sc->limit = ldl_le_p(p + 4);
    sc->flags = ldl_le_p(p + 8);
    sc->base = ldq_le_p(p + 16);
}

static void load_qemu_note(CPUX86State *env, const Note *n)
{
    static const int gpr_order[16] = {
        R_EAX, R_EBX, R_ECX, R_EDX, R_ESI, R_EDI, R_ESP, R_EBP,
        R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15,
    };
    static const int seg_order[6] = { R_CS, R_DS, R_ES, R_FS, R_GS, R_SS };
    const uint8_t *d = n->desc;

    for (int i = 0; i < 16; i++) {
        env->regs[gpr_order[i]] = ldq_le_p(d + 8 + i * 8);
    }
    env->eip = ldq_le_p(d + 136);
    env->eflags = ldq_le_p(d + 144);
    for (int i = 0; i < 6; i++) {
        load_seg(&env->segs[seg_order[i]], d + 152 + i * 24);
    }
    load_seg(&env->ldt, d + 296);
    load_seg(&env->tr, d + 320);
    load_seg(&env->gdt, d + 344);
    load_seg(&env->idt, d + 368);
    for (int i = 0; i < 5; i++) {
        env->cr[i] = ldq_le_p(d + 392 + i * 8);
    }
    if (n->descsz >= 440 && ldl_le_p(d + 4) >= 440) {
        env->kernelgsbase = ldq_le_p(d + 432);
    }
}

/* Used only when a vCPU has no QEMU note: the general registers and selectors. */
static void load_prstatus(CPUX86State *env, const Note *n)
{
    const uint8_t *r;

    if (n->descsz == PRSTATUS64_SIZE) {
        static const int order[] = {
            R_R15, R_R14, R_R13, R_R12, R_EBP, R_EBX, R_R11, R_R10, R_R9, R_R8,
            R_EAX, R_ECX, R_EDX, R_ESI, R_EDI,
        };
        r = n->desc + 112;
        for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
            env->regs[order[i]] = ldq_le_p(r + i * 8);
        }
        env->eip = ldq_le_p(r + 16 * 8);
        env->segs[R_CS].selector = ldq_le_p(r + 17 * 8);
        env->eflags = ldq_le_p(r + 18 * 8);
        env->regs[R_ESP] = ldq_le_p(r + 19 * 8);
        env->segs[R_SS].selector = ldq_le_p(r + 20 * 8);
        env->segs[R_FS].base = ldq_le_p(r + 21 * 8);
        env->segs[R_GS].base = ldq_le_p(r + 22 * 8);
        env->segs[R_DS].selector = ldq_le_p(r + 23 * 8);
        env->segs[R_ES].selector = ldq_le_p(r + 24 * 8);
        env->segs[R_FS].selector = ldq_le_p(r + 25 * 8);
        env->segs[R_GS].selector = ldq_le_p(r + 26 * 8);
    } else {
        static const int order[] = { R_EBX, R_ECX, R_EDX, R_ESI, R_EDI, R_EBP, R_EAX };
        r = n->desc + 72;
        for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
            env->regs[order[i]] = ldl_le_p(r + i * 4);
        }
        env->segs[R_DS].selector = lduw_le_p(r + 28);
        env->segs[R_ES].selector = lduw_le_p(r + 32);
        env->segs[R_FS].selector = lduw_le_p(r + 36);
        env->segs[R_GS].selector = lduw_le_p(r + 40);
        env->eip = ldl_le_p(r + 48);
        env->segs[R_CS].selector = lduw_le_p(r + 52);
        env->eflags = ldl_le_p(r + 56);
        env->regs[R_ESP] = ldl_le_p(r + 60);
        env->segs[R_SS].selector = lduw_le_p(r + 64);
    }
}

/*
 * EFER is not in the notes. A vCPU was in long mode when paging with PAE
 * was on and any of: its CS is a 64-bit segment (L bit); it is vCPU 0 of
 * an EM_X86_64 file (QEMU picks the machine from vCPU 0's LMA); it holds
 * state only long mode can hold (rip, or a GDT/IDT/FS/GS base, above 4 GiB).
 * Then EFER = LME|LMA; otherwise 0. SCE and NXE cannot be recovered; the
 * page walk of a dump does not use them.
 */
static uint64_t derive_efer(const CPUX86State *env, int index, uint16_t machine)
{
    bool paging_pae = (env->cr[0] & CR0_PG_MASK) && (env->cr[4] & CR4_PAE_MASK);
    bool wide = env->eip >> 32 || env->gdt.base >> 32 || env->idt.base >> 32 ||
                env->segs[R_FS].base >> 32 || env->segs[R_GS].base >> 32;

    if (paging_pae && ((env->segs[R_CS].flags & DESC_L_MASK) ||
                       (index == 0 && machine == EM_X86_64) || wide)) {
        return MSR_EFER_LME | MSR_EFER_LMA;
    }
    return 0;
}

static bool is_cpu_note(const Note *n)
{
    return (!strcmp(n->name, "CORE") && n->type == NT_PRSTATUS) ||
           (!strcmp(n->name, "QEMU") && n->type == 0);
}

static bool validate_cpu_notes(Vmcore *vc, int *ncpus, Error **errp)
{
    int nprs = 0, nqemu = 0;

    for (guint i = 0; i < vc->note_list->len; i++) {
        const Note *n = &g_array_index(vc->note_list, Note, i);
        if (!strcmp(n->name, "CORE") && n->type == NT_PRSTATUS) {
            if (n->descsz != PRSTATUS64_SIZE && n->descsz != PRSTATUS32_SIZE) {
                error_setg(errp, "NT_PRSTATUS note %d has size %u (want %u or %u)",
                           nprs, n->descsz, PRSTATUS64_SIZE, PRSTATUS32_SIZE);
                return false;
            }
            nprs++;
        } else if (!strcmp(n->name, "QEMU") && n->type == 0) {
            if (n->descsz < QEMU_NOTE_MIN) {
                error_setg(errp, "QEMU CPU note %d has size %u (want at least %u)",
                           nqemu, n->descsz, QEMU_NOTE_MIN);
                return false;
            }
            nqemu++;
        }
    }
    if (nqemu && nqemu != nprs) {
        error_setg(errp, "vmcore has %d NT_PRSTATUS notes but %d QEMU CPU notes",
                   nprs, nqemu);
        return false;
    }
    if (nprs > MACHINE_MAX_CPUS) {
        error_setg(errp, "vmcore has %d vCPUs; at most %d are supported", nprs,
                   MACHINE_MAX_CPUS);
        return false;
    }
    *ncpus = nprs;
    return true;
}

static void load_cpus(Vmcore *vc, int ncpus)
{
    int prs = 0, qn = 0;

    machine_cpus_create(ncpus);
    for (guint i = 0; i < vc->note_list->len; i++) {
        const Note *n = &g_array_index(vc->note_list, Note, i);
        if (!strcmp(n->name, "CORE") && n->type == NT_PRSTATUS && prs < ncpus) {
            load_prstatus(&machine_cpu(prs++)->env, n);
        }
    }
    for (guint i = 0; i < vc->note_list->len; i++) {
        const Note *n = &g_array_index(vc->note_list, Note, i);
        if (!strcmp(n->name, "QEMU") && n->type == 0 && qn < ncpus) {
            load_qemu_note(&machine_cpu(qn++)->env, n);
        }
    }
    for (int i = 0; i < ncpus; i++) {
        CPUX86State *env = &machine_cpu(i)->env;
        /*
         * Without QEMU notes (a Linux /proc/vmcore) there are no control
         * registers to look at; 64-bit NT_PRSTATUS notes in an EM_X86_64
         * file come from a 64-bit kernel, which runs in long mode. Only
         * EFER (in no note) changes, so dumps stay x86-64 like the input.
         */
        if (qn == 0 && vc->machine == EM_X86_64) {
            env->efer = MSR_EFER_LME | MSR_EFER_LMA;
        } else {
            env->efer = derive_efer(env, i, vc->machine);
        }
        env->cr8 = 0;
        env->a20_mask = ~0u;
    }
}

/* QEMU's region names for a -S pc/q35 guest; anything else is RAM. */
static const char *segment_name(const Segment *s, bool *readonly, unsigned *region)
{
    uint64_t end = s->paddr + s->memsz;

    *readonly = true;
    if (s->paddr == 0xc0000 && end == 0xe0000) {
        *region = 2;
        return "pc.rom";
    }
    if ((s->paddr >= 0xe0000 && end == 0x100000) ||
        (s->paddr >= 0xff000000 && end == 0x100000000ULL)) {
        *region = 3;
        return "pc.bios";
    }
    *readonly = false;
    *region = 1;
    return "pc.ram";
}

static bool page_is_zero(const uint8_t *p, size_t len)
{
    const uint64_t *q = (const uint64_t *)p;

    for (size_t i = 0; i < len / 8; i++) {
        if (q[i]) {
            return false;
        }
    }
    for (size_t i = len & ~(size_t)7; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/*
 * Where segment s starts in the shared host mapping, given the end of the
 * previous one. Segments of 2 MiB or more start 2 MiB aligned (huge pages,
 * as physmem's own RAM); each is followed by an unused page so that two
 * segments adjacent in guest-physical space are not adjacent on the host
 * either, or a dump would merge them into one PT_LOAD.
 */
static uint64_t segment_host_offset(const Segment *s, uint64_t cursor)
{
    uint64_t align = s->memsz >= (2u << 20) ? (2u << 20) : 4096;

    return (cursor + align - 1) & ~(align - 1);
}

static uint64_t segment_host_end(const Segment *s, uint64_t offset)
{
    return offset + ((s->memsz + 4095) & ~4095ULL) + 4096;
}

/* A page of a kdump file; its pfn is in a segment made from the file's runs. */
/* Where a kdump file's pages go: guest RAM, or (mapped) the file behind it. */
typedef struct KdumpSink {
    int fd;                     /* mapped: the temporary file base maps, else -1 */
    uint8_t *base;
    uint8_t *run;               /* mapped: pages not written yet, contiguous */
    uint64_t run_off;           /* where run goes in the file */
    size_t run_len;
} KdumpSink;

/* Writes the pending run of pages into the temporary file. */
static bool kdump_sink_flush(KdumpSink *k, Error **errp)
{
    for (size_t done = 0; done < k->run_len;) {
        ssize_t n = pwrite(k->fd, k->run + done, k->run_len - done, k->run_off + done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot write the kdump file's memory to a "
                             "temporary file in %s", g_get_tmp_dir());
            return false;
        }
        done += n;
    }
    k->run_len = 0;
    return true;
}

static bool put_kdump_page(void *opaque, uint64_t pfn, const uint8_t *page, Error **errp)
{
    KdumpSink *k = opaque;
    uint8_t *host = physmem_host_ptr(pfn * KDUMP_READ_PAGE_SIZE, KDUMP_READ_PAGE_SIZE);
    uint64_t off;

    g_assert(host);
    if (k->fd < 0) {
        memcpy(host, page, KDUMP_READ_PAGE_SIZE);
        return true;
    }
    /*
     * Into the file, not through the private mapping (which would make the
     * page this process's own): page cache the kernel may write back and
     * drop, so a conversion's memory stays bounded, and untouched pages of
     * the mapping still read the file. Pages come in pfn order: contiguous
     * ones go out in one write of up to RESTORE_CHUNK.
     */
    off = host - k->base;
    if (k->run_len && (off != k->run_off + k->run_len ||
                       k->run_len + KDUMP_READ_PAGE_SIZE > RESTORE_CHUNK) &&
        !kdump_sink_flush(k, errp)) {
        return false;
    }
    if (!k->run_len) {
        k->run_off = off;
    }
    memcpy(k->run + k->run_len, page, KDUMP_READ_PAGE_SIZE);
    k->run_len += KDUMP_READ_PAGE_SIZE;
    return true;
}

/*
 * Copies segment contents; zero pages are skipped so empty RAM stays
 * unbacked. All segments live in one host mapping: one mapping each
 * would exceed the kernel's vm.max_map_count (65530) for a vmcore of
 * 65535 segments, which QEMU writes for guests with that many.
 */
static bool load_memory_mapped(Vmcore *vc, Error **errp);

static bool load_memory(Vmcore *vc, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(RESTORE_CHUNK);
    uint64_t total = 0, cursor = 0;
    uint8_t *base;
    KdumpSink sink = { .fd = -1 };
    bool ok;

    for (guint i = 0; i < vc->segs->len; i++) {
        const Segment *s = &g_array_index(vc->segs, Segment, i);
        total = segment_host_end(s, segment_host_offset(s, total));
    }
    if (vc->map && !vc->kdump) {
        return load_memory_mapped(vc, errp);
    }
    if (vc->map) {
        /*
         * A kdump file's pages are compressed: mapped, they are decompressed
         * into a sparse temporary file that RAM maps, so memory stays
         * bounded as for an ELF input (disk: the non-zero pages).
         */
        sink.fd = vmcore_tmpfile("hold the kdump file's memory", errp);
        if (sink.fd < 0) {
            return false;
        }
        if (ftruncate(sink.fd, (off_t)total) < 0) {
            error_setg_errno(errp, errno, "cannot size a temporary file in %s for the "
                             "kdump file's memory", g_get_tmp_dir());
            close(sink.fd);
            return false;
        }
        base = physmem_map_file(sink.fd, total, errp);
        sink.run = g_malloc(RESTORE_CHUNK);
    } else {
        base = physmem_alloc_ram(total, errp);
    }
    if (!base) {
        if (sink.fd >= 0) {
            close(sink.fd);
        }
        g_free(sink.run);
        return false;
    }
    sink.base = base;
    for (guint i = 0; i < vc->segs->len; i++) {
        const Segment *s = &g_array_index(vc->segs, Segment, i);
        bool ro;
        unsigned region;
        const char *name = segment_name(s, &ro, &region);
        uint64_t host_off = segment_host_offset(s, cursor);
        const RAMBlock *rb = physmem_add_block(name, s->paddr, s->memsz,
                                               base + host_off, ro, region, errp);
        if (!rb) {
            goto out_fail;
        }
        cursor = segment_host_end(s, host_off);
        for (uint64_t done = 0; !vc->kdump && done < s->filesz;) {
            uint64_t n = MIN(s->filesz - done, RESTORE_CHUNK);
            if (!read_at(vc, s->offset + done, buf, n, "memory", errp)) {
                goto out_fail;
            }
            for (uint64_t p = 0; p < n; p += 4096) {
                uint64_t len = MIN(4096, n - p);
                if (!page_is_zero(buf + p, len)) {
                    memcpy(rb->host + done + p, buf + p, len);
                }
            }
            done += n;
        }
    }
    ok = !vc->kdump || (kdump_reader_read_pages(vc->kdump, put_kdump_page, &sink, errp) &&
                        (sink.fd < 0 || kdump_sink_flush(&sink, errp)));
    if (sink.fd >= 0) {
        close(sink.fd);         /* the mapping keeps the unlinked file */
    }
    g_free(sink.run);
    return ok;

out_fail:
    if (sink.fd >= 0) {
        close(sink.fd);
    }
    g_free(sink.run);
    return false;
}

/*
 * restore_set_mapped(true) (guestdump-convert): guest RAM is the file itself,
 * mapped private and copy-on-write, so memory stays bounded whatever the
 * size of the vmcore, holes of a sparse file stay holes, and nothing is
 * copied. A segment's host pointer is its place in the mapping; each has
 * its own region id so that segments adjacent both in the file and in
 * guest-physical space stay separate blocks, as the gap pages keep them in
 * the copying path, and a dump writes the same blocks either way.
 */
static bool load_memory_mapped(Vmcore *vc, Error **errp)
{
    uint8_t *base = physmem_map_file(vc->fd, vc->file_size, errp);

    if (!base) {
        return false;
    }
    for (guint i = 0; i < vc->segs->len; i++) {
        const Segment *s = &g_array_index(vc->segs, Segment, i);
        bool ro;
        unsigned region;
        const char *name = segment_name(s, &ro, &region);

        if (!physmem_add_block(name, s->paddr, s->memsz, base + s->offset, ro,
                               RESTORE_MAPPED_REGION0 + i, errp)) {
            return false;
        }
    }
    return true;
}

/* The guest note: any note after the vCPU notes (QEMU writes it last). */
static const Note *find_guest_note(Vmcore *vc)
{
    for (guint i = vc->note_list->len; i-- > 0;) {
        const Note *n = &g_array_index(vc->note_list, Note, i);
        if (!is_cpu_note(n)) {
            return n;
        }
    }
    return NULL;
}

/*
 * Finds the note's header, name and descriptor in guest RAM: the copy the
 * guest announced. Its padding is not compared; QEMU clears one byte of it
 * in the dump.
 */
/* How much RAM the guest-note search reads between trims of file-mapped RAM. */
#define NOTE_SCAN_WINDOW (64u << 20)

static bool find_note_in_ram(const Note *n, uint64_t *paddr)
{
    size_t key = 12 + (n->desc - n->raw - 12) + n->descsz;

    for (size_t i = 0; i < physmem_block_count(); i++) {
        const RAMBlock *rb = physmem_block(i);
        const uint8_t *p = rb->host, *end = rb->host + rb->size;

        while (p + key <= end) {
            /*
             * NOTE_SCAN_WINDOW at a time (plus the key's length, so a match
             * across the edge is found): RAM mapped from a file is dropped
             * from the page tables after each, so a search that reads all of
             * a large guest does not make it all resident.
             */
            const uint8_t *wend = (size_t)(end - p) > NOTE_SCAN_WINDOW + key ?
                                  p + NOTE_SCAN_WINDOW + key : end;
            const uint8_t *hit = memmem(p, wend - p, n->raw, MIN(key, 24));

            if (!hit || hit + key > wend) {
                p = wend == end ? end : wend - key + 1;
                physmem_trim_file_ram();
                continue;
            }
            if (!memcmp(hit, n->raw, key) && !((hit - rb->host) & 3)) {
                *paddr = rb->gpa + (hit - rb->host);
                return true;
            }
            p = hit + 1;
        }
    }
    return false;
}

/* A 4-byte aligned run of zeros in writable RAM, searched from the top of low RAM. */
static bool find_zero_space(size_t size, uint64_t *paddr)
{
    uint64_t need = (size + 4095) & ~4095ULL;

    for (size_t i = physmem_block_count(); i-- > 0;) {
        const RAMBlock *rb = physmem_block(i);
        uint64_t run = 0;

        if (rb->readonly || rb->size < need) {
            continue;
        }
        for (uint64_t off = rb->size & ~4095ULL; off >= 4096; off -= 4096) {
            run = page_is_zero(rb->host + off - 4096, 4096) ? run + 4096 : 0;
            if (run >= need) {
                *paddr = rb->gpa + off - 4096;
                return true;
            }
        }
    }
    return false;
}

/* The guest note kept between restore_vmcore() and restore_finish(). */
static uint8_t *pending_note;
static size_t pending_note_size;
static size_t pending_note_key;     /* header + padded name + descriptor */

bool restore_finish(Error **errp)
{
    g_autofree uint8_t *raw = g_steal_pointer(&pending_note);
    Note n = { 0 };
    uint64_t paddr;

    if (!raw) {
        return true;
    }
    n.raw = raw;
    n.raw_size = pending_note_size;
    n.descsz = pending_note_key - (((uint64_t)ldl_le_p(raw) + 3) & ~3ULL) - 12;
    n.desc = raw + 12 + (((uint64_t)ldl_le_p(raw) + 3) & ~3ULL);
    if (!fw_cfg_dma_enabled()) {
        g_printerr("guestdump: warning: -restore: the vmcore's guest note is dropped: "
                   "this machine has no fw_cfg for the vmcoreinfo device\n");
        return true;
    }
    if (!find_note_in_ram(&n, &paddr)) {
        if (!find_zero_space(n.raw_size, &paddr) ||
            !physmem_write(paddr, n.raw, n.raw_size, NULL)) {
            g_printerr("guestdump: warning: -restore: no room in guest RAM for the "
                       "vmcore's guest note; it is dropped\n");
            return true;
        }
        g_printerr("guestdump: warning: -restore: the guest note is not in guest RAM; "
                   "placed at 0x%llx (a zero-filled area)\n", (unsigned long long)paddr);
    }
    if (!vmcoreinfo_find() && !vmcoreinfo_realize(errp)) {
        return false;
    }
    vmcoreinfo_set(FW_CFG_VMCOREINFO_FORMAT_ELF, n.raw_size, paddr);
    return true;
}

void restore_cleanup(void)
{
    g_clear_pointer(&pending_note, g_free);
}

static void vmcore_free(Vmcore *vc)
{
    if (vc->fd >= 0) {
        close(vc->fd);
    }
    if (vc->segs) {
        g_array_free(vc->segs, TRUE);
    }
    if (vc->note_list) {
        g_array_free(vc->note_list, TRUE);
    }
    g_free(vc->notes);
    kdump_reader_free(vc->kdump);
}

bool restore_vmcore(const char *path, uint64_t max_ram, Error **errp)
{
    Vmcore vc = { .fd = -1, .max_ram = max_ram ? max_ram : RESTORE_DEFAULT_MAX_RAM,
                  .map = restore_mapped };
    struct stat st;
    VmcoreKind kind;
    int ncpus = 0;
    bool ok = false;

    /*
     * O_NONBLOCK: opening a FIFO for reading would wait for a writer
     * forever. It is refused below like every other non-regular file
     * (a FIFO, /dev/zero, a terminal), and regular files ignore the flag.
     */
    vc.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (vc.fd < 0) {
        error_setg_errno(errp, errno, "-restore: cannot open '%s'", path);
        return false;
    }
    if (fstat(vc.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error_setg(errp, "-restore: '%s' is not a regular file", path);
        goto out;
    }
    if (st.st_size == 0) {
        error_setg(errp, "-restore: '%s' is empty", path);
        goto out;
    }
    vc.file_size = st.st_size;
    kind = vmcore_probe_fd(vc.fd);
    if (!vmcore_kind_readable(kind)) {
        error_setg(errp, "-restore: '%s' is %s", path, vmcore_kind_message(kind));
        goto out;
    }
    /* Everything about the file is checked before the machine is touched. */
    if (!(kind == VMCORE_KIND_ELF_CORE ? parse_header(&vc, errp) : parse_kdump(&vc, errp)) ||
        !validate_cpu_notes(&vc, &ncpus, errp)) {
        error_prepend(errp, "-restore: '%s': ", path);
        goto out;
    }
    if (!load_memory(&vc, errp)) {
        error_prepend(errp, "-restore: '%s': ", path);
        goto out;
    }
    load_cpus(&vc, ncpus);
    {
        const Note *n = find_guest_note(&vc);
        g_clear_pointer(&pending_note, g_free);
        if (n) {
            pending_note = g_memdup2(n->raw, n->raw_size);
            pending_note_size = n->raw_size;
            pending_note_key = (n->desc - n->raw) + n->descsz;
        }
    }
    ok = true;
out:
    vmcore_free(&vc);
    return ok;
}
