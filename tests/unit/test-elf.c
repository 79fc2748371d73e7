/* Unit tests: ELF writer layout, PT_LOADs, PN_XNUM, failures; output sinks. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sysemu/dump-core.h"

#define MiB (1ull << 20)

typedef struct Fixture {
    DumpPlan s;                 /* what the dump core would plan */
    DumpJob job;
    DumpGuestBlock blocks[3];
    uint8_t *ram[3];
    DumpX86CPUState cpus[2];
    char *path;
} Fixture;

/* RAM with a position-dependent pattern, so misplaced bytes are caught. */
static uint8_t pattern(uint64_t gpa)
{
    return (uint8_t)((gpa >> 12) * 7 + gpa * 13 + (gpa >> 20));
}

static void fixture_init(Fixture *f, int d_class, int d_machine)
{
    static const uint64_t layout[3][2] = {
        { 0, 0xa0000 }, { 0xc0000, 0x100000 }, { 0x100000, 0x400000 },
    };
    int fd;

    memset(f, 0, sizeof(*f));
    f->job.plan = &f->s;
    for (int i = 0; i < 3; i++) {
        uint64_t len = layout[i][1] - layout[i][0];

        f->ram[i] = g_malloc(len);
        for (uint64_t a = 0; a < len; a++) {
            f->ram[i][a] = pattern(layout[i][0] + a);
        }
        f->blocks[i] = (DumpGuestBlock){ layout[i][0], layout[i][1], f->ram[i] };
    }
    f->s.guest_phys_blocks.num = 3;
    f->s.guest_phys_blocks.blocks = f->blocks;
    f->s.dump_info = (DumpArchInfo){ .d_machine = d_machine, .d_endian = ELFDATA2LSB,
                                     .d_class = d_class, .page_size = 4096 };
    for (int i = 0; i < 2; i++) {
        f->cpus[i].cpu_index = i;
        f->cpus[i].regs[DUMP_R_EAX] = 0x1122334455667788ull + i;
        f->cpus[i].eip = 0x7cf0;
    }
    f->s.nr_cpus = 2;
    f->s.cpus = f->cpus;
    f->s.note_size = dump_arch_note_size(d_class, d_machine, 2);
    f->s.notes = g_malloc0(f->s.note_size);
    g_assert_cmpuint(dump_arch_write_notes(f->s.notes, f->s.cpus, 2, d_machine), ==,
                     f->s.note_size);
    f->s.list = dump_mapping_list_new();
    fd = g_file_open_tmp("test-elf-XXXXXX", &f->path, NULL);
    g_assert_cmpint(fd, >=, 0);
    f->job.out = dump_output_new_fd(fd, false);
}

static void fixture_total(Fixture *f)
{
    uint64_t total = 0;

    for (int i = 0; i < 3; i++) {
        uint64_t lo = f->blocks[i].target_start, hi = f->blocks[i].target_end;

        if (f->s.has_filter) {
            lo = MAX(lo, (uint64_t)f->s.begin);
            hi = MIN(hi, (uint64_t)(f->s.begin + f->s.length));
        }
        total += hi > lo ? hi - lo : 0;
    }
    f->s.total_size = total;
    atomic_store(&f->job.total_size, total);
}

static bool fixture_dump(Fixture *f, Error **errp)
{
    bool ok;

    fixture_total(f);
    ok = dump_elf_writer.prepare(&f->job, errp) &&
         dump_elf_writer.write(&f->job, errp);
    dump_elf_writer.cleanup(&f->job);
    if (ok) {
        g_assert_true(dump_output_finish(f->job.out));
    } else {
        dump_output_free(f->job.out);
    }
    f->job.out = NULL;
    return ok;
}

static void fixture_free(Fixture *f)
{
    for (int i = 0; i < 3; i++) {
        g_free(f->ram[i]);
    }
    g_free(f->s.notes);
    dump_mapping_list_free(f->s.list);
    g_unlink(f->path);
    g_free(f->path);
}

/*
 * readelf must accept the file without a warning (skipped when absent).
 * allowed: one warning text tolerated (binutils 2.40 wrongly flags section
 * 0's sh_info in every PN_XNUM file, Linux's own vmcores included).
 */
static void check_readelf_allow(const char *path, const char *allowed)
{
    g_autofree char *readelf = g_find_program_in_path("readelf");
    g_autofree char *out = NULL, *err = NULL;
    const char *argv[] = { "readelf", "-a", "-W", path, NULL };
    int status;

    if (!readelf) {
        /* The rest of the test ran; it still shows as skipped, naming the tool. */
        g_test_skip("readelf not installed");
        return;
    }
    argv[0] = readelf;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, &out, &err, &status, NULL));
    if (err && *err) {
        g_test_message("readelf: %s", err);
    }
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    if (allowed && strstr(err, allowed)) {
        g_assert_cmpuint(strlen(err), ==, strchr(err, '\n') + 1 - err);
    } else {
        g_assert_cmpstr(err, ==, "");
    }
    g_assert_nonnull(strstr(out, "CORE (Core file)"));
}

static void check_readelf(const char *path)
{
    check_readelf_allow(path, NULL);
}

typedef struct Phdr {
    uint32_t type;
    uint64_t offset, vaddr, paddr, filesz, memsz;
} Phdr;

typedef struct Parsed {
    gchar *data;
    gsize len;
    bool is64;
    uint16_t ehsize, phnum, shnum, shstrndx;
    uint64_t phoff, shoff;
    uint64_t real_phnum;
    Phdr *ph;
    uint64_t strtab_off, strtab_size;
} Parsed;

static void parse(const char *path, Parsed *p)
{
    memset(p, 0, sizeof(*p));
    g_assert_true(g_file_get_contents(path, &p->data, &p->len, NULL));
    g_assert_cmpmem(p->data, 4, ELFMAG, 4);
    p->is64 = p->data[EI_CLASS] == ELFCLASS64;
    if (p->is64) {
        Elf64_Ehdr *e = (Elf64_Ehdr *)p->data;
        Elf64_Shdr *sh;

        p->ehsize = e->e_ehsize;
        p->phnum = e->e_phnum;
        p->shnum = e->e_shnum;
        p->shstrndx = e->e_shstrndx;
        p->phoff = e->e_phoff;
        p->shoff = e->e_shoff;
        sh = (Elf64_Shdr *)(p->data + p->shoff);
        p->real_phnum = p->phnum == PN_XNUM ? sh[0].sh_info : p->phnum;
        p->strtab_off = sh[p->shstrndx].sh_offset;
        p->strtab_size = sh[p->shstrndx].sh_size;
        p->ph = g_new0(Phdr, p->real_phnum);
        for (uint64_t i = 0; i < p->real_phnum; i++) {
            Elf64_Phdr *ph = (Elf64_Phdr *)(p->data + p->phoff) + i;

            p->ph[i] = (Phdr){ ph->p_type, ph->p_offset, ph->p_vaddr, ph->p_paddr,
                               ph->p_filesz, ph->p_memsz };
            g_assert_cmpuint(ph->p_flags, ==, 0);
            g_assert_cmpuint(ph->p_align, ==, 0);
        }
    } else {
        Elf32_Ehdr *e = (Elf32_Ehdr *)p->data;
        Elf32_Shdr *sh;

        p->ehsize = e->e_ehsize;
        p->phnum = e->e_phnum;
        p->shnum = e->e_shnum;
        p->shstrndx = e->e_shstrndx;
        p->phoff = e->e_phoff;
        p->shoff = e->e_shoff;
        sh = (Elf32_Shdr *)(p->data + p->shoff);
        p->real_phnum = p->phnum == PN_XNUM ? sh[0].sh_info : p->phnum;
        p->strtab_off = sh[p->shstrndx].sh_offset;
        p->strtab_size = sh[p->shstrndx].sh_size;
        p->ph = g_new0(Phdr, p->real_phnum);
        for (uint64_t i = 0; i < p->real_phnum; i++) {
            Elf32_Phdr *ph = (Elf32_Phdr *)(p->data + p->phoff) + i;

            p->ph[i] = (Phdr){ ph->p_type, ph->p_offset, ph->p_vaddr, ph->p_paddr,
                               ph->p_filesz, ph->p_memsz };
        }
    }
}

static void parsed_free(Parsed *p)
{
    g_free(p->data);
    g_free(p->ph);
}

/* Every PT_LOAD's file bytes are the guest's bytes at its p_paddr. */
static void check_loads(const Parsed *p)
{
    for (uint64_t i = 1; i < p->real_phnum; i++) {
        const Phdr *ph = &p->ph[i];

        g_assert_cmpuint(ph->type, ==, PT_LOAD);
        if (!ph->filesz) {
            continue;
        }
        g_assert_cmpuint(ph->offset + ph->filesz, <=, p->strtab_off);
        for (uint64_t a = 0; a < ph->filesz; a += 509) {
            g_assert_cmpuint((uint8_t)p->data[ph->offset + a], ==,
                             pattern(ph->paddr + a));
        }
        g_assert_cmpuint((uint8_t)p->data[ph->offset + ph->filesz - 1], ==,
                         pattern(ph->paddr + ph->filesz - 1));
    }
}

static void test_elf64_simple(void)
{
    Fixture f;
    Parsed p;
    Error *err = NULL;
    uint64_t note_off, mem_off;

    fixture_init(&f, ELFCLASS64, EM_X86_64);
    dump_get_guest_simple_memory_mapping(f.s.list, &f.s.guest_phys_blocks);
    g_assert_true(fixture_dump(&f, &err));
    g_assert_cmpint(atomic_load(&f.job.written_size), ==, 0x400000 - 0x20000);

    parse(f.path, &p);
    g_assert_cmpuint(p.ehsize, ==, 64);
    g_assert_cmpuint(p.phoff, ==, 64);
    g_assert_cmpuint(p.phnum, ==, 4);
    g_assert_cmpuint(p.shoff, ==, 64 + 4 * 56);
    g_assert_cmpuint(p.shnum, ==, 2);
    g_assert_cmpuint(p.shstrndx, ==, 1);
    note_off = p.shoff + 2 * 64;
    g_assert_cmpuint(p.ph[0].type, ==, PT_NOTE);
    g_assert_cmpuint(p.ph[0].offset, ==, note_off);
    g_assert_cmpuint(p.ph[0].filesz, ==, 2 * 816);
    mem_off = note_off + 2 * 816;
    g_assert_cmpuint(p.ph[1].offset, ==, mem_off);
    g_assert_cmphex(p.ph[1].vaddr, ==, 0);
    g_assert_cmphex(p.ph[2].paddr, ==, 0xc0000);
    g_assert_cmphex(p.ph[2].vaddr, ==, 0xc0000);
    g_assert_cmpuint(p.ph[2].offset, ==, mem_off + 0xa0000);
    g_assert_cmpuint(p.ph[3].offset, ==, mem_off + 0xe0000);
    g_assert_cmpuint(p.strtab_off, ==, mem_off + 0x3e0000);
    g_assert_cmpuint(p.strtab_size, ==, 11);
    g_assert_cmpuint(p.len, ==, p.strtab_off + 11);
    g_assert_cmpmem(p.data + p.strtab_off, 11, "\0.shstrtab\0", 11);
    /* First CORE note: pid 1, rax at pr_reg[10]. */
    g_assert_cmpmem(p.data + note_off + 12, 5, "CORE", 5);
    g_assert_cmpuint(*(uint32_t *)(p.data + note_off + 20 + 32), ==, 1);
    g_assert_cmphex(*(uint64_t *)(p.data + note_off + 20 + 112 + 80), ==,
                    0x1122334455667788ull);
    g_assert_cmpmem(p.data + note_off + 2 * 356 + 12, 5, "QEMU", 5);
    check_loads(&p);
    check_readelf(f.path);
    parsed_free(&p);
    fixture_free(&f);
}

/* No CPU, no block above 4 GiB: ELF32 with EM_386, as QEMU picks for -M none. */
static void test_elf32(void)
{
    Fixture f;
    Parsed p;
    Error *err = NULL;

    fixture_init(&f, ELFCLASS32, EM_386);
    dump_get_guest_simple_memory_mapping(f.s.list, &f.s.guest_phys_blocks);
    g_assert_true(fixture_dump(&f, &err));
    parse(f.path, &p);
    g_assert_false(p.is64);
    g_assert_cmpuint(p.ehsize, ==, 52);
    g_assert_cmpuint(p.phoff, ==, 52);
    g_assert_cmpuint(p.shoff, ==, 52 + 4 * 32);
    g_assert_cmpuint(p.ph[0].filesz, ==, 2 * 624);
    g_assert_cmpuint(p.ph[1].offset, ==, 52 + 4 * 32 + 2 * 40 + 2 * 624);
    check_loads(&p);
    check_readelf(f.path);
    parsed_free(&p);
    fixture_free(&f);
}

/* Reference 3.12's filtered example: begin 0x9f000, length 0x22000. */
static void test_filter(void)
{
    Fixture f;
    Parsed p;
    Error *err = NULL;

    fixture_init(&f, ELFCLASS64, EM_386);
    f.s.has_filter = true;
    f.s.begin = 0x9f000;
    f.s.length = 0x22000;
    dump_get_guest_simple_memory_mapping(f.s.list, &f.s.guest_phys_blocks);
    dump_mapping_filter(f.s.list, f.s.begin, f.s.length);
    g_assert_true(fixture_dump(&f, &err));
    parse(f.path, &p);
    g_assert_cmpuint(p.phnum, ==, 3);
    g_assert_cmphex(p.ph[1].paddr, ==, 0x9f000);
    g_assert_cmphex(p.ph[1].filesz, ==, 0x1000);
    g_assert_cmphex(p.ph[2].paddr, ==, 0xc0000);
    g_assert_cmphex(p.ph[2].filesz, ==, 0x1000);
    g_assert_cmpuint(p.ph[2].offset, ==, p.ph[1].offset + 0x1000);
    g_assert_cmpint(atomic_load(&f.job.written_size), ==, 0x2000);
    g_assert_cmpuint(p.len, ==, p.ph[1].offset + 0x2000 + 11);
    check_loads(&p);
    check_readelf(f.path);
    parsed_free(&p);
    fixture_free(&f);
}

/*
 * Paging-style mappings: aliases share file bytes, a mapping past its block
 * is clamped, one outside RAM gets p_offset all-ones and no file bytes.
 */
static void test_paging_offsets(void)
{
    Fixture f;
    Parsed p;
    Error *err = NULL;

    fixture_init(&f, ELFCLASS64, EM_X86_64);
    g_assert_true(dump_mapping_list_add_merge_sorted(f.s.list, 0x100000,
                  0xffffffff81000000ull, 0x1000, NULL));
    g_assert_true(dump_mapping_list_add_merge_sorted(f.s.list, 0x100000,
                  0xffff888000100000ull, 0x1000, NULL));
    g_assert_true(dump_mapping_list_add_merge_sorted(f.s.list, 0x200000,
                  0xffff888000200000ull, 0x40000000, NULL));
    g_assert_true(dump_mapping_list_add_merge_sorted(f.s.list, 0xa0000,
                  0xffff8880000a0000ull, 0x1000, NULL));
    g_assert_true(fixture_dump(&f, &err));
    parse(f.path, &p);
    g_assert_cmpuint(p.phnum, ==, 5);
    /* Order: phys ascending. */
    g_assert_cmphex(p.ph[1].paddr, ==, 0xa0000);
    g_assert_cmphex(p.ph[1].offset, ==, UINT64_MAX);
    g_assert_cmpuint(p.ph[1].filesz, ==, 0);
    g_assert_cmphex(p.ph[2].vaddr, ==, 0xffff888000100000ull);   /* newest first */
    g_assert_cmphex(p.ph[3].vaddr, ==, 0xffffffff81000000ull);
    g_assert_cmpuint(p.ph[2].offset, ==, p.ph[3].offset);
    g_assert_cmphex(p.ph[4].memsz, ==, 0x40000000);
    g_assert_cmphex(p.ph[4].filesz, ==, 0x400000 - 0x200000);
    check_loads(&p);
    check_readelf(f.path);
    parsed_free(&p);
    fixture_free(&f);
}

typedef struct Map {
    uint64_t phys, virt, len;
} Map;

/*
 * Dumps maps (added in this order) with paging=true and checks the PT_LOADs'
 * virtual addresses against want, in program-header order.
 */
static void check_load_order(int d_machine, const Map *maps, size_t n,
                             const uint64_t *want)
{
    Fixture f;
    Parsed p;
    Error *err = NULL;

    fixture_init(&f, ELFCLASS64, d_machine);
    f.s.paging = true;
    for (size_t i = 0; i < n; i++) {
        g_assert_true(dump_mapping_list_add_merge_sorted(f.s.list, maps[i].phys,
                      maps[i].virt, maps[i].len, NULL));
    }
    g_assert_true(fixture_dump(&f, &err));
    parse(f.path, &p);
    g_assert_cmpuint(p.real_phnum, ==, n + 1);
    for (size_t i = 0; i < n; i++) {
        g_assert_cmphex(p.ph[i + 1].vaddr, ==, want[i]);
    }
    check_loads(&p);
    check_readelf(f.path);
    parsed_free(&p);
    fixture_free(&f);
}

#define DIRECT 0xffff888000000000ull
#define VMALLOC 0xffffc90000000000ull
#define KTEXT 0xffffffff81000000ull
#define MODULES 0xffffffffc0000000ull

/*
 * docs/compat.md ELF row 8: in an x86-64 paging dump the largest mapping in
 * the kernel half below 0xffffffff80000000 (a Linux guest's direct map) is
 * the last PT_LOAD below that address, where makedumpfile takes PAGE_OFFSET
 * from; everything else keeps QEMU's order (phys ascending).
 */
static void test_direct_map_last(void)
{
    /* A vmalloc page, a user page and a vmemmap page sort after phys 0. */
    static const Map linux_like[] = {
        { 0, DIRECT, 0x300000 },
        { 0x100000, KTEXT, 0x2000 },
        { 0x301000, VMALLOC + 0x5000, 0x1000 },
        { 0x302000, 0x400000, 0x1000 },
        { 0x3fe000, 0xffffea0000000000ull, 0x2000 },
        { 0x3ff000, MODULES, 0x1000 },
    };
    static const uint64_t moved[] = {
        KTEXT, VMALLOC + 0x5000, 0x400000, 0xffffea0000000000ull, MODULES, DIRECT,
    };
    /* 32-bit machine (EM_386): makedumpfile's x86-64 guess is not used. */
    static const uint64_t as_qemu[] = {
        DIRECT, KTEXT, VMALLOC + 0x5000, 0x400000, 0xffffea0000000000ull, MODULES,
    };
    /* Only kernel image and module mappings follow: QEMU's order stays. */
    static const Map already_last[] = {
        { 0x1000, VMALLOC, 0x1000 },
        { 0x100000, DIRECT + 0x100000, 0x200000 },
        { 0x300000, KTEXT, 0x1000 },
        { 0x3ff000, MODULES, 0x1000 },
    };
    static const uint64_t kept[] = {
        VMALLOC, DIRECT + 0x100000, KTEXT, MODULES,
    };
    /* Equal sizes: the first in QEMU's order moves. */
    static const Map tie[] = {
        { 0x1000, DIRECT + 0x1000, 0x1000 },
        { 0x3000, VMALLOC, 0x1000 },
        { 0x5000, DIRECT + 0x5000, 0x1000 },
    };
    static const uint64_t tie_want[] = {
        VMALLOC, DIRECT + 0x5000, DIRECT + 0x1000,
    };

    check_load_order(EM_X86_64, linux_like, G_N_ELEMENTS(linux_like), moved);
    check_load_order(EM_386, linux_like, G_N_ELEMENTS(linux_like), as_qemu);
    check_load_order(EM_X86_64, already_last, G_N_ELEMENTS(already_last), kept);
    check_load_order(EM_X86_64, tie, G_N_ELEMENTS(tie), tie_want);
}

/* 70000 PT_LOADs: e_phnum = PN_XNUM and the count in section 0's sh_info. */
static void test_pn_xnum(void)
{
    Fixture f;
    Parsed p;
    Error *err = NULL;
    const uint64_t n = 70000;

    fixture_init(&f, ELFCLASS64, EM_X86_64);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t phys = (i % 512) * 0x1000 + 0x100000;

        g_assert_true(dump_mapping_list_add_merge_sorted(f.s.list, phys,
                      0xffff800000000000ull + i * 0x200000, 0x1000, NULL));
    }
    g_assert_true(fixture_dump(&f, &err));
    parse(f.path, &p);
    g_assert_cmpuint(p.phnum, ==, PN_XNUM);
    g_assert_cmpuint(p.real_phnum, ==, n + 1);
    g_assert_cmpuint(p.shoff, ==, 64 + (n + 1) * 56);
    check_loads(&p);
    check_readelf_allow(f.path, "Unexpected value (70001) in info field");
    parsed_free(&p);
    fixture_free(&f);
}

/* A reader that went away: EPIPE ends the dump with QEMU's message. */
static void test_write_failure(void)
{
    Fixture f;
    Error *err = NULL;
    int fds[2];

    signal(SIGPIPE, SIG_IGN);
    fixture_init(&f, ELFCLASS64, EM_X86_64);
    dump_get_guest_simple_memory_mapping(f.s.list, &f.s.guest_phys_blocks);
    dump_output_free(f.job.out);
    g_assert_cmpint(pipe(fds), ==, 0);
    close(fds[0]);
    f.job.out = dump_output_new_fd(fds[1], false);
    g_assert_false(fixture_dump(&f, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "dump: failed to write elf header: Broken pipe");
    error_free(err);
    fixture_free(&f);
}

/* Cancellation is honoured between memory batches. */
static void test_cancel(void)
{
    Fixture f;
    Error *err = NULL;

    fixture_init(&f, ELFCLASS64, EM_X86_64);
    dump_get_guest_simple_memory_mapping(f.s.list, &f.s.guest_phys_blocks);
    atomic_store(&f.job.cancel, true);
    g_assert_false(fixture_dump(&f, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "dump: cancelled");
    error_free(err);
    fixture_free(&f);
}

static uint64_t be64_at(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Flattened sink: 4 KiB header, a BE {offset, size} record per write, 16 x 0xff. */
static void test_flattened(void)
{
    g_autofree char *path = NULL;
    g_autofree gchar *data = NULL;
    gsize len;
    int fd = g_file_open_tmp("test-flat-XXXXXX", &path, NULL);
    DumpOutput *out;
    Error *err = NULL;
    const uint8_t *d;
    static const uint8_t end[16] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };

    g_assert_cmpint(fd, >=, 0);
    out = dump_output_new_flattened(dump_output_new_fd(fd, false), &err);
    g_assert_nonnull(out);
    g_assert_true(dump_output_is_seekable(out));
    g_assert_true(dump_output_pwrite(out, "abc", 3, 0x1234));
    g_assert_true(dump_output_write(out, "xy", 2));
    g_assert_true(dump_output_finish(out));

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    d = (const uint8_t *)data;
    g_assert_cmpuint(len, ==, 4096 + 16 + 3 + 16 + 2 + 16);
    g_assert_cmpmem(d, 13, "makedumpfile", 13);
    g_assert_cmpuint(be64_at(d + 16), ==, 1);
    g_assert_cmpuint(be64_at(d + 24), ==, 1);
    for (int i = 32; i < 4096; i++) {
        g_assert_cmpuint(d[i], ==, 0);
    }
    g_assert_cmpuint(be64_at(d + 4096), ==, 0x1234);
    g_assert_cmpuint(be64_at(d + 4104), ==, 3);
    g_assert_cmpmem(d + 4112, 3, "abc", 3);
    g_assert_cmpuint(be64_at(d + 4115), ==, 0);
    g_assert_cmpuint(be64_at(d + 4123), ==, 2);
    g_assert_cmpmem(d + 4131, 2, "xy", 2);
    g_assert_cmpmem(d + 4133, 16, end, 16);
    g_unlink(path);
}

/* Seekable sink: positioned writes land at absolute offsets. */
static void test_seekable(void)
{
    g_autofree char *path = NULL;
    g_autofree gchar *data = NULL;
    gsize len;
    int fd = g_file_open_tmp("test-raw-XXXXXX", &path, NULL);
    DumpOutput *out = dump_output_new_fd(fd, true);

    g_assert_true(dump_output_pwrite(out, "B", 1, 4096));
    g_assert_true(dump_output_pwrite(out, "A", 1, 0));
    g_assert_true(dump_output_finish(out));
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==, 4097);
    g_assert_cmpint(data[0], ==, 'A');
    g_assert_cmpint(data[4096], ==, 'B');
    g_assert_cmpint(data[1], ==, 0);
    g_unlink(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/elf/elf64-simple", test_elf64_simple);
    g_test_add_func("/elf/elf32", test_elf32);
    g_test_add_func("/elf/filter", test_filter);
    g_test_add_func("/elf/paging-offsets", test_paging_offsets);
    g_test_add_func("/elf/direct-map-last", test_direct_map_last);
    g_test_add_func("/elf/pn-xnum", test_pn_xnum);
    g_test_add_func("/elf/write-failure", test_write_failure);
    g_test_add_func("/elf/cancel", test_cancel);
    g_test_add_func("/output/flattened", test_flattened);
    g_test_add_func("/output/seekable", test_seekable);
    return g_test_run();
}
