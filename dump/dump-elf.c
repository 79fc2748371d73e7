/* The ELF vmcore writer: headers, notes, a PT_LOAD per mapping, RAM, .shstrtab. */
#include <elf.h>
#include <errno.h>
#include <glib.h>
#include <stddef.h>
#include <string.h>

#include "sysemu/dump-core.h"

/*
 * Layout (docs/compat.md): ELF header, program headers, section headers,
 * notes, memory, .shstrtab. QEMU 7.2 puts the section headers first, which
 * makedumpfile 1.7.2 cannot read; program headers right after the ELF header
 * is what Linux vmcores and QEMU <= 7.1 do. Everything stays sequential so
 * pipes work.
 */

_Static_assert(sizeof(Elf64_Ehdr) == 64, "Elf64_Ehdr");
_Static_assert(sizeof(Elf32_Ehdr) == 52, "Elf32_Ehdr");
_Static_assert(sizeof(Elf64_Phdr) == 56, "Elf64_Phdr");
_Static_assert(sizeof(Elf32_Phdr) == 32, "Elf32_Phdr");
_Static_assert(sizeof(Elf64_Shdr) == 64, "Elf64_Shdr");
_Static_assert(sizeof(Elf32_Shdr) == 40, "Elf32_Shdr");
_Static_assert(offsetof(Elf64_Phdr, p_offset) == 8, "Elf64_Phdr p_offset");

/* "\0.shstrtab\0": the only section name on x86. */
static const char shstrtab[] = "\0.shstrtab";
#define SHSTRTAB_SIZE sizeof(shstrtab)
#define SHDR_NUM 2

/* RAM goes out in runs of at most this, straight from guest memory. */
#define MEMORY_CHUNK (4u << 20)
/* Program headers are produced and written in batches of this many bytes. */
#define PHDR_BATCH (1u << 20)

typedef struct ElfLayout {
    bool is64;
    uint64_t phdr_num;        /* 1 + mappings, capped at UINT32_MAX */
    uint64_t ehdr_size, phdr_size, shdr_size;
    uint64_t phdr_offset, shdr_offset, note_offset, memory_offset;
    uint64_t section_offset;
    const DumpMapping *last;  /* written after all others (compat.md row 8) */
} ElfLayout;

/*
 * makedumpfile 1.7.2 takes an x86-64 kernel's direct-map base (PAGE_OFFSET)
 * from the last PT_LOAD whose p_vaddr lies below the kernel image mapping
 * (0xffffffff80000000, Linux's __START_KERNEL_map): p_vaddr - p_paddr. Linux's
 * own vmcores end with the direct map. QEMU's physical order usually ends
 * with a vmalloc or vmemmap page instead, and makedumpfile fails ("Could not
 * validate mem_section"). So the largest mapping in the kernel half below the
 * image, in a Linux guest the direct map of its largest RAM range, is written
 * last, unless it already is the last one makedumpfile considers.
 */
#define X86_64_KERNEL_IMAGE_BASE 0xffffffff80000000ull

static const DumpMapping *direct_map_mapping(const DumpPlan *s)
{
    const DumpMapping *m = NULL, *best = NULL;
    bool others_after = false;

    if (!s->paging || s->dump_info.d_machine != EM_X86_64) {
        return NULL;
    }
    while ((m = dump_mapping_list_next(s->list, m))) {
        /* Same as the p_vaddr written (virtual 0 is reported as phys). */
        uint64_t va = m->virt_addr ? m->virt_addr : m->phys_addr;

        if (va >= X86_64_KERNEL_IMAGE_BASE) {
            continue;
        }
        if ((va >> 63) && (!best || m->length > best->length)) {
            best = m;
            others_after = false;
        } else {
            others_after = true;
        }
    }
    return others_after ? best : NULL;
}

/* The mapping after prev in PT_LOAD order: the list's, with l->last moved last. */
static const DumpMapping *next_load(const DumpPlan *s, const ElfLayout *l,
                                    const DumpMapping *prev)
{
    if (prev && prev == l->last) {
        return NULL;
    }
    do {
        prev = dump_mapping_list_next(s->list, prev);
    } while (prev && prev == l->last);
    return prev ? prev : l->last;
}

static bool elf_prepare(DumpJob *job, Error **errp)
{
    const DumpPlan *s = job->plan;
    ElfLayout *l = g_new0(ElfLayout, 1);
    uint64_t maps = dump_mapping_list_count(s->list);

    l->is64 = s->dump_info.d_class == ELFCLASS64;
    l->phdr_num = MIN(1 + maps, (uint64_t)UINT32_MAX);
    l->ehdr_size = l->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    l->phdr_size = l->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    l->shdr_size = l->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    l->phdr_offset = l->ehdr_size;
    l->shdr_offset = l->phdr_offset + l->phdr_size * l->phdr_num;
    l->note_offset = l->shdr_offset + l->shdr_size * SHDR_NUM;
    l->memory_offset = l->note_offset + s->note_size;
    l->section_offset = l->memory_offset + s->total_size;
    l->last = direct_map_mapping(s);
    job->writer_state = l;
    return true;
}

static void elf_cleanup(DumpJob *job)
{
    g_clear_pointer(&job->writer_state, g_free);
}

/* The blocks as they are dumped: clipped to the filter, empty ones skipped. */
static bool clipped_block(const DumpPlan *s, size_t i, uint64_t *start,
                          uint64_t *size)
{
    const DumpGuestBlock *b = &s->guest_phys_blocks.blocks[i];
    uint64_t lo = b->target_start, hi = b->target_end;

    if (s->has_filter) {
        uint64_t fs = (uint64_t)s->begin;
        uint64_t fe = fs + (uint64_t)s->length;

        if (fe < fs) {
            fe = UINT64_MAX;
        }
        lo = MAX(lo, fs);
        hi = MIN(hi, fe);
        if (hi <= lo) {
            return false;
        }
    }
    *start = lo;
    *size = hi - lo;
    return true;
}

/* Reference 3.8: where a mapping's bytes are in the file, if anywhere. */
static void offset_range(const DumpPlan *s, const ElfLayout *l,
                         const DumpMapping *m, uint64_t *p_offset,
                         uint64_t *p_filesz)
{
    uint64_t off = l->memory_offset;

    for (size_t i = 0; i < s->guest_phys_blocks.num; i++) {
        uint64_t start, size;

        if (!clipped_block(s, i, &start, &size)) {
            continue;
        }
        if (m->phys_addr >= start && m->phys_addr - start < size) {
            *p_offset = off + (m->phys_addr - start);
            *p_filesz = MIN(m->length, size - (m->phys_addr - start));
            return;
        }
        off += size;
    }
    *p_offset = l->is64 ? UINT64_MAX : UINT32_MAX;
    *p_filesz = 0;
}

static void fill_ehdr(const DumpPlan *s, const ElfLayout *l, uint8_t *buf)
{
    uint16_t phnum = l->phdr_num >= PN_XNUM ? PN_XNUM : l->phdr_num;
    unsigned char ident[EI_NIDENT] = {
        ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3,
        l->is64 ? ELFCLASS64 : ELFCLASS32, s->dump_info.d_endian, EV_CURRENT,
    };

    if (l->is64) {
        Elf64_Ehdr e = {
            .e_type = GUINT16_TO_LE(ET_CORE),
            .e_machine = GUINT16_TO_LE(s->dump_info.d_machine),
            .e_version = GUINT32_TO_LE(EV_CURRENT),
            .e_phoff = GUINT64_TO_LE(l->phdr_offset),
            .e_shoff = GUINT64_TO_LE(l->shdr_offset),
            /* QEMU 7.2 writes sizeof(pointer) = 8 here (compat.md). */
            .e_ehsize = GUINT16_TO_LE(sizeof(Elf64_Ehdr)),
            .e_phentsize = GUINT16_TO_LE(sizeof(Elf64_Phdr)),
            .e_phnum = GUINT16_TO_LE(phnum),
            .e_shentsize = GUINT16_TO_LE(sizeof(Elf64_Shdr)),
            .e_shnum = GUINT16_TO_LE(SHDR_NUM),
            .e_shstrndx = GUINT16_TO_LE(SHDR_NUM - 1),
        };
        memcpy(e.e_ident, ident, EI_NIDENT);
        memcpy(buf, &e, sizeof(e));
    } else {
        Elf32_Ehdr e = {
            .e_type = GUINT16_TO_LE(ET_CORE),
            .e_machine = GUINT16_TO_LE(s->dump_info.d_machine),
            .e_version = GUINT32_TO_LE(EV_CURRENT),
            .e_phoff = GUINT32_TO_LE(l->phdr_offset),
            .e_shoff = GUINT32_TO_LE(l->shdr_offset),
            .e_ehsize = GUINT16_TO_LE(sizeof(Elf32_Ehdr)),
            .e_phentsize = GUINT16_TO_LE(sizeof(Elf32_Phdr)),
            .e_phnum = GUINT16_TO_LE(phnum),
            .e_shentsize = GUINT16_TO_LE(sizeof(Elf32_Shdr)),
            .e_shnum = GUINT16_TO_LE(SHDR_NUM),
            .e_shstrndx = GUINT16_TO_LE(SHDR_NUM - 1),
        };
        memcpy(e.e_ident, ident, EI_NIDENT);
        memcpy(buf, &e, sizeof(e));
    }
}

static size_t fill_phdr(const ElfLayout *l, uint8_t *buf, uint32_t type,
                        uint64_t offset, uint64_t paddr, uint64_t vaddr,
                        uint64_t filesz, uint64_t memsz)
{
    if (l->is64) {
        Elf64_Phdr p = {
            .p_type = GUINT32_TO_LE(type),
            .p_offset = GUINT64_TO_LE(offset),
            .p_vaddr = GUINT64_TO_LE(vaddr),
            .p_paddr = GUINT64_TO_LE(paddr),
            .p_filesz = GUINT64_TO_LE(filesz),
            .p_memsz = GUINT64_TO_LE(memsz),
        };
        memcpy(buf, &p, sizeof(p));
        return sizeof(p);
    } else {
        Elf32_Phdr p = {
            .p_type = GUINT32_TO_LE(type),
            .p_offset = GUINT32_TO_LE(offset),
            .p_vaddr = GUINT32_TO_LE(vaddr),
            .p_paddr = GUINT32_TO_LE(paddr),
            .p_filesz = GUINT32_TO_LE(filesz),
            .p_memsz = GUINT32_TO_LE(memsz),
        };
        memcpy(buf, &p, sizeof(p));
        return sizeof(p);
    }
}

static bool write_phdrs(DumpJob *job, const ElfLayout *l, Error **errp)
{
    const DumpPlan *s = job->plan;
    g_autofree uint8_t *buf = g_malloc0(PHDR_BATCH);
    size_t used;
    uint64_t index = 1;
    const DumpMapping *m = NULL;

    used = fill_phdr(l, buf, PT_NOTE, l->note_offset, 0, 0, s->note_size,
                     s->note_size);
    while (index < l->phdr_num && (m = next_load(s, l, m))) {
        uint64_t off, filesz;

        offset_range(s, l, m, &off, &filesz);
        /* A mapping of virtual 0 reads as "no virtual address" (QEMU too). */
        used += fill_phdr(l, buf + used, PT_LOAD, off, m->phys_addr,
                          m->virt_addr ? m->virt_addr : m->phys_addr,
                          filesz, m->length);
        index++;
        if (used + l->phdr_size > PHDR_BATCH) {
            if (!dump_output_write(job->out, buf, used)) {
                goto fail;
            }
            used = 0;
            if (dump_check_cancel(job, errp)) {
                return false;
            }
        }
    }
    if (used && !dump_output_write(job->out, buf, used)) {
        goto fail;
    }
    return true;
fail:
    error_setg_errno(errp, errno, "dump: failed to write program header table");
    return false;
}

static bool write_shdrs(DumpJob *job, const ElfLayout *l, Error **errp)
{
    uint8_t buf[2 * sizeof(Elf64_Shdr)] = { 0 };
    uint32_t xnum = l->phdr_num >= PN_XNUM ? l->phdr_num : 0;

    if (l->is64) {
        Elf64_Shdr sh[2] = {
            { .sh_info = GUINT32_TO_LE(xnum) },
            { .sh_name = GUINT32_TO_LE(1), .sh_type = GUINT32_TO_LE(SHT_STRTAB),
              .sh_offset = GUINT64_TO_LE(l->section_offset),
              .sh_size = GUINT64_TO_LE(SHSTRTAB_SIZE) },
        };
        memcpy(buf, sh, sizeof(sh));
    } else {
        Elf32_Shdr sh[2] = {
            { .sh_info = GUINT32_TO_LE(xnum) },
            { .sh_name = GUINT32_TO_LE(1), .sh_type = GUINT32_TO_LE(SHT_STRTAB),
              .sh_offset = GUINT32_TO_LE(l->section_offset),
              .sh_size = GUINT32_TO_LE(SHSTRTAB_SIZE) },
        };
        memcpy(buf, sh, sizeof(sh));
    }
    if (!dump_output_write(job->out, buf, SHDR_NUM * l->shdr_size)) {
        error_setg_errno(errp, errno, "dump: failed to write section headers");
        return false;
    }
    return true;
}

/* The note area in QEMU's three parts, for QEMU's three error texts. */
static bool write_notes(DumpJob *job, Error **errp)
{
    const DumpPlan *s = job->plan;
    size_t cpu_len = s->note_size - s->guest_note_size;
    size_t core_len = 0;
    const uint8_t *p = s->notes;

    /* CORE notes come first; their total is what precedes the first QEMU note. */
    for (size_t off = 0; off + 12 <= cpu_len;) {
        uint32_t namesz, descsz;
        size_t len;

        memcpy(&namesz, p + off, 4);
        memcpy(&descsz, p + off + 4, 4);
        len = 12 + ((GUINT32_FROM_LE(namesz) + 3) & ~3u) +
              ((GUINT32_FROM_LE(descsz) + 3) & ~3u);
        if (memcmp(p + off + 12, "CORE", 5) != 0) {
            break;
        }
        off += len;
        core_len = off;
    }
    if (!dump_output_write(job->out, p, core_len)) {
        error_setg(errp, "dump: failed to write elf notes");
        return false;
    }
    if (!dump_output_write(job->out, p + core_len, cpu_len - core_len)) {
        error_setg(errp, "dump: failed to write CPU status");
        return false;
    }
    if (s->guest_note_size &&
        !dump_output_write(job->out, s->guest_note, s->guest_note_size)) {
        error_setg(errp, "dump: failed to write guest note");
        return false;
    }
    return true;
}

/*
 * Chunks end on MEMORY_CHUNK boundaries of the file, not of the block: the
 * page cache gets whole aligned pieces, and a sparse sink sees every
 * aligned zero run whole instead of cut at chunk edges.
 */
static bool write_memory(DumpJob *job, Error **errp)
{
    const DumpPlan *s = job->plan;
    const ElfLayout *l = job->writer_state;
    uint64_t file_off = l->memory_offset;
    g_autofree uint8_t *bounce = dump_plan_is_live(s) ? g_malloc(MEMORY_CHUNK) : NULL;
    DumpReleaseCursor rel = { 0 };

    for (size_t i = 0; i < s->guest_phys_blocks.num; i++) {
        const DumpGuestBlock *b = &s->guest_phys_blocks.blocks[i];
        uint64_t start, size;

        if (!clipped_block(s, i, &start, &size)) {
            continue;
        }
        for (uint64_t done = 0; done < size;) {
            size_t n = MIN(size - done,
                           MEMORY_CHUNK - file_off % MEMORY_CHUNK);
            const uint8_t *src = dump_plan_ram(s, b, start + done, n, bounce);

            if (dump_check_cancel(job, errp)) {
                return false;
            }
            if (!dump_output_write(job->out, src, n)) {
                error_setg_errno(errp, errno, "dump: failed to save memory");
                return false;
            }
            /* Blocks ascend and each byte is written once: nothing below is read again. */
            dump_guest_blocks_release_below(&s->guest_phys_blocks, &rel,
                                            start + done + n);
            dump_progress_add(job, n);
            done += n;
            file_off += n;
        }
    }
    return true;
}

static bool elf_write(DumpJob *job, Error **errp)
{
    const DumpPlan *s = job->plan;
    const ElfLayout *l = job->writer_state;
    uint8_t ehdr[sizeof(Elf64_Ehdr)];

    fill_ehdr(s, l, ehdr);
    if (!dump_output_write(job->out, ehdr, l->ehdr_size)) {
        error_setg_errno(errp, errno, "dump: failed to write elf header");
        return false;
    }
    if (!write_phdrs(job, l, errp) || !write_shdrs(job, l, errp) ||
        !write_notes(job, errp) || !write_memory(job, errp)) {
        return false;
    }
    if (!dump_output_write(job->out, shstrtab, SHSTRTAB_SIZE)) {
        error_setg_errno(errp, errno, "dump: failed to write string table data");
        return false;
    }
    return true;
}

const DumpWriter dump_elf_writer = {
    .prepare = elf_prepare,
    .write = elf_write,
    .cleanup = elf_cleanup,
};
