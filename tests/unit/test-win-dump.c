/* Unit tests of win-dmp: bytes against a QEMU 7.2 model, hostile headers, RAM kept. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "sysemu/dump-core.h"
#include "sysemu/physmem.h"
#include "system/machine-internal.h"
#include "tests/qtest/win-guest.h"

#define PG 4096u

typedef struct Fixture {
    WinGuest *g;
    DumpPlan s;                 /* what the dump core would plan */
    DumpJob job;
    X86CPU cpus[WIN_GUEST_MAX_CPUS];
    DumpX86CPUState states[WIN_GUEST_MAX_CPUS];   /* what the host hands over */
    uint8_t *note;
    char *path;
    GChecksum *ram_before;
} Fixture;

/* The generator's defaults on the smallest RAM it takes, to keep the suite quick. */
static void unit_options(WinGuestOptions *opt)
{
    win_guest_default_options(opt);
    opt->ram_size = 32ull << 20;
}

static void load_range(uint64_t pa, const uint8_t *data, size_t len, void *opaque)
{
    g_assert_true(physmem_write(pa, data, len, NULL));
}

/* A pc-like map: RAM below 640 KiB, a ROM hole, RAM from 1 MiB on. */
static void machine_from_guest(Fixture *f)
{
    uint64_t ram = f->g->opt.ram_size;

    physmem_reset();
    g_assert_nonnull(physmem_add_block("pc.ram", 0, 0xa0000, NULL, false, 0, NULL));
    g_assert_nonnull(physmem_add_block("pc.rom", 0xc0000, 0x20000, NULL, true, 1, NULL));
    g_assert_nonnull(physmem_add_block("pc.ram", 0x100000, ram - 0x100000, NULL, false,
                                       0, NULL));
    win_guest_foreach_range(f->g, load_range, NULL);
    for (int i = 0; i < f->g->opt.smp; i++) {
        x86_cpu_reset(&f->cpus[i]);
        f->cpus[i].cpu_index = i;
        for (size_t k = 0; k < f->g->nregs; k++) {
            g_assert_true(x86_cpu_set_reg(&f->cpus[i], f->g->regs[i][k].name,
                                          f->g->regs[i][k].value, NULL));
        }
    }
}

static GChecksum *ram_digest(void)
{
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);

    for (size_t i = 0; i < physmem_block_count(); i++) {
        const RAMBlock *rb = physmem_block(i);

        g_checksum_update(c, rb->host, rb->size);
    }
    return c;
}

/* Note as the dump core would hand it over: read at dump time, from RAM. */
static void fixture_note(Fixture *f, uint32_t size)
{
    g_free(f->note);
    f->note = g_malloc0(size + 1);
    g_assert_true(physmem_read(f->g->note_pa, f->note, size, NULL));
    f->s.guest_note = f->note;
    f->s.guest_note_size = size;
}

static void fixture_init(Fixture *f, const WinGuestOptions *opt)
{
    int fd;

    memset(f, 0, sizeof(*f));
    f->job.plan = &f->s;
    f->g = win_guest_new(opt);
    machine_from_guest(f);
    f->s.fmt = dump_format_info(DUMP_GUEST_MEMORY_FORMAT_WIN_DMP);
    f->s.nr_cpus = opt->smp;
    f->s.cpus = f->states;
    fd = g_file_open_tmp("test-win-dump-XXXXXX", &f->path, NULL);
    g_assert_cmpint(fd, >=, 0);
    f->job.out = dump_output_new_fd(fd, false);
    fixture_note(f, f->g->note_size);
}

/* The guest changed after building: reload the header (tests make it hostile). */
static void fixture_set_header(Fixture *f, const uint8_t *h)
{
    g_assert_true(physmem_write(win_guest_header_pa(f->g), h, f->g->x64 ? 8192 : 4096,
                                NULL));
    fixture_note(f, f->s.guest_note_size);
}

static bool fixture_dump(Fixture *f, Error **errp)
{
    bool ok;

    f->ram_before = ram_digest();
    /* Tests change registers after fixture_init: take the state at dump time. */
    for (int i = 0; i < f->s.nr_cpus; i++) {
        f->states[i] = f->cpus[i].env;
        f->states[i].cpu_index = f->cpus[i].cpu_index;
    }
    dump_guest_blocks_collect(&f->s.guest_phys_blocks);
    atomic_store(&f->job.total_size, (int64_t)f->g->opt.ram_size);
    atomic_store(&f->job.written_size, 0);
    ok = dump_win_dmp_writer.prepare(&f->job, errp) &&
         dump_win_dmp_writer.write(&f->job, errp);
    dump_win_dmp_writer.cleanup(&f->job);
    dump_guest_blocks_free(&f->s.guest_phys_blocks);
    if (ok) {
        g_assert_true(dump_output_finish(f->job.out));
    } else {
        dump_output_free(f->job.out);
    }
    f->job.out = NULL;
    /* Whatever happened, guest memory is as it was. */
    {
        g_autoptr(GChecksum) after = ram_digest();

        g_assert_cmpstr(g_checksum_get_string(f->ram_before), ==,
                        g_checksum_get_string(after));
    }
    return ok;
}

static void fixture_free(Fixture *f)
{
    win_guest_free(f->g);
    g_free(f->note);
    if (f->ram_before) {
        g_checksum_free(f->ram_before);
    }
    g_unlink(f->path);
    g_free(f->path);
    physmem_reset();
}

/* ---------------------------------------------------------------------- */
/* The model: what QEMU 7.2 writes, from the reference tables               */
/* ---------------------------------------------------------------------- */

static void p16(uint8_t *b, size_t off, uint16_t v)
{
    v = GUINT16_TO_LE(v);
    memcpy(b + off, &v, 2);
}

static void p32(uint8_t *b, size_t off, uint32_t v)
{
    v = GUINT32_TO_LE(v);
    memcpy(b + off, &v, 4);
}

static void p64(uint8_t *b, size_t off, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    memcpy(b + off, &v, 8);
}

static uint64_t g64(const uint8_t *b, size_t off)
{
    uint64_t v;

    memcpy(&v, b + off, 8);
    return GUINT64_FROM_LE(v);
}

static uint32_t g32(const uint8_t *b, size_t off)
{
    uint32_t v;

    memcpy(&v, b + off, 4);
    return GUINT32_FROM_LE(v);
}

static size_t model_context(const Fixture *f, int i, uint8_t *c)
{
    const CPUX86State *e = &f->cpus[i].env;

    if (f->g->x64) {
        static const int gpr[16] = { R_EAX, R_ECX, R_EDX, R_EBX, R_ESP, R_EBP, R_ESI,
                                     R_EDI, R_R8, R_R9, R_R10, R_R11, R_R12, R_R13,
                                     R_R14, R_R15 };

        memset(c, 0, 1232);
        p32(c, 0x30, 0x0010001f);
        p32(c, 0x34, e->mxcsr);
        p16(c, 0x38, e->segs[R_CS].selector);
        p16(c, 0x3a, e->segs[R_DS].selector);
        p16(c, 0x3c, e->segs[R_ES].selector);
        p16(c, 0x3e, e->segs[R_FS].selector);
        p16(c, 0x40, e->segs[R_GS].selector);
        p16(c, 0x42, e->segs[R_SS].selector);
        p32(c, 0x44, e->eflags);
        for (int k = 0; k < 4; k++) {
            p64(c, 0x48 + 8 * k, e->dr[k]);
        }
        p64(c, 0x68, e->dr[6]);
        p64(c, 0x70, e->dr[7]);
        for (int k = 0; k < 16; k++) {
            p64(c, 0x78 + 8 * k, e->regs[gpr[k]]);
        }
        p64(c, 0xf8, e->eip);
        p32(c, 0x118, e->mxcsr);
        return 1232;
    }
    memset(c, 0, 720);
    p32(c, 0x00, 0x00010017);
    for (int k = 0; k < 4; k++) {
        p32(c, 0x04 + 4 * k, e->dr[k]);
    }
    p32(c, 0x14, e->dr[6]);
    p32(c, 0x18, e->dr[7]);
    p32(c, 0x8c, e->segs[R_GS].selector);
    p32(c, 0x90, e->segs[R_FS].selector);
    p32(c, 0x94, e->segs[R_ES].selector);
    p32(c, 0x98, e->segs[R_DS].selector);
    p32(c, 0x9c, e->regs[R_EDI]);
    p32(c, 0xa0, e->regs[R_ESI]);
    p32(c, 0xa4, e->regs[R_EBX]);
    p32(c, 0xa8, e->regs[R_EDX]);
    p32(c, 0xac, e->regs[R_ECX]);
    p32(c, 0xb0, e->regs[R_EAX]);
    p32(c, 0xb4, e->regs[R_EBP]);
    p32(c, 0xb8, e->eip);
    p32(c, 0xbc, e->segs[R_CS].selector);
    p32(c, 0xc0, e->eflags);
    p32(c, 0xc4, e->regs[R_ESP]);
    p32(c, 0xc8, e->segs[R_SS].selector);
    return 720;
}

/*
 * The expected file, for the generator's unmodified structures: ncontexts
 * vCPUs get their CONTEXT, kdbg is the KDBG address that validates.
 */
static GByteArray *model_dump(Fixture *f, int ncontexts, uint64_t kdbg)
{
    WinGuest *g = f->g;
    size_t hsize = g->x64 ? 8192 : 4096;
    GByteArray *out = g_byte_array_new();
    g_autofree uint8_t *ram = g_malloc(g->opt.ram_size);
    uint8_t h[8192];
    uint8_t bug[40];
    uint64_t pages = 0;

    memcpy(h, f->note + 24, hsize);
    for (size_t i = 0; i < g->nruns; i++) {
        pages += g->runs[i].page_count;
    }
    /* The bugcheck block at KiBugCheckData, as the generator wrote it. */
    win_guest_read(g, win_guest_kva_to_pa(g, win_guest_va(g, WIN_GUEST_BUGCHECK_OFF)),
                   bug, g->x64 ? 40 : 20);
    if (g->x64) {
        p64(h, 0x18, 0xfffffa8000000000ull);
        memcpy(h + 0x38, bug, 40);
        if (!g32(h, 0x38)) {
            p32(h, 0x38, 0x161);
        }
        p64(h, 0x80, kdbg);
        p32(h, 0x8c, 0);
        p32(h, 0xf9c, 0);
        p64(h, 0xfa0, 8192 + pages * PG);
    } else {
        p32(h, 0x14, 0x84000000u);
        memcpy(h + 0x28, bug, 20);
        if (!g32(h, 0x28)) {
            p32(h, 0x28, 0x161);
        }
        p32(h, 0x60, kdbg);
        /* The whole LARGE_INTEGER, where 7.2 writes the low half (W7). */
        p64(h, 0xfa0, 4096 + pages * PG);
    }
    g_byte_array_append(out, h, hsize);

    g_assert_true(physmem_read(0, ram, 0xa0000, NULL));
    g_assert_true(physmem_read(0x100000, ram + 0x100000, g->opt.ram_size - 0x100000,
                               NULL));
    for (int i = 0; i < ncontexts; i++) {
        uint8_t c[1232];
        size_t len = model_context(f, i, c);
        uint64_t va = win_guest_va(g, WIN_GUEST_CTX_OFF(i));

        for (size_t k = 0; k < len; k++) {
            ram[win_guest_kva_to_pa(g, va + k)] = c[k];
        }
    }
    for (size_t i = 0; i < g->nruns; i++) {
        g_byte_array_append(out, ram + g->runs[i].base_page * PG,
                            g->runs[i].page_count * PG);
    }
    return out;
}

static void assert_file_equals(const Fixture *f, const GByteArray *want)
{
    g_autofree char *got = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(f->path, &got, &len, NULL));
    g_assert_cmpuint(len, ==, want->len);
    if (!memcmp(got, want->data, len)) {
        return;
    }
    for (gsize i = 0; i < len; i++) {
        if ((uint8_t)got[i] != want->data[i]) {
            g_error("first difference at file offset 0x%zx: 0x%02x, want 0x%02x", i,
                    (uint8_t)got[i], want->data[i]);
        }
    }
}

/* file(1) recognises full Windows dumps; skipped when it is not installed. */
static void assert_file_magic(const Fixture *f, const char *want)
{
    g_autofree char *file = g_find_program_in_path("file");
    g_autofree char *out = NULL;
    const char *argv[] = { NULL, "-b", f->path, NULL };
    int status;

    if (!file) {
        g_test_skip("file not installed");
        return;
    }
    argv[0] = file;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                               NULL, NULL, &out, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    if (!strstr(out, want) || !strstr(out, "full dump")) {
        g_error("file says \"%s\", want \"%s\"", g_strchomp(out), want);
    }
}

/* ---------------------------------------------------------------------- */
/* Good guests                                                               */
/* ---------------------------------------------------------------------- */

static void run_good(const WinGuestOptions *opt, const char *magic)
{
    Fixture f;
    g_autoptr(GByteArray) want = NULL;
    uint64_t kdbg;
    Error *err = NULL;

    fixture_init(&f, opt);
    kdbg = win_guest_va(f.g, opt->kdbg_encrypted ? WIN_GUEST_KDBG_COPY_OFF
                                                 : WIN_GUEST_KDBG_OFF);
    want = model_dump(&f, opt->smp, kdbg);
    g_assert_true(fixture_dump(&f, &err));
    g_assert_null(err);
    assert_file_equals(&f, want);
    /* query-dump: total is RequiredDumpSpace and completed reaches it. */
    g_assert_cmpint(atomic_load(&f.job.total_size), ==, want->len);
    g_assert_cmpint(atomic_load(&f.job.written_size), ==, want->len);
    assert_file_magic(&f, magic);
    fixture_free(&f);
}

static void test_long4(void)
{
    WinGuestOptions opt;

    unit_options(&opt);
    opt.smp = 3;
    run_good(&opt, "MS Windows 64bit crash dump");
}

static void test_long4_bugcheck(void)
{
    WinGuestOptions opt;

    unit_options(&opt);
    opt.bugcheck_code = 0xd1;
    run_good(&opt, "MS Windows 64bit crash dump");
}

static void test_long4_kdbg_fallback(void)
{
    WinGuestOptions opt;

    unit_options(&opt);
    opt.kdbg_encrypted = true;
    opt.smp = 2;
    run_good(&opt, "MS Windows 64bit crash dump");
}

static void test_pae(void)
{
    WinGuestOptions opt;

    unit_options(&opt);
    opt.mode = WIN_GUEST_PAE;
    opt.smp = 2;
    run_good(&opt, "MS Windows 32bit crash dump");
}

static void test_x86(void)
{
    WinGuestOptions opt;

    unit_options(&opt);
    opt.mode = WIN_GUEST_X86;
    opt.kdbg_encrypted = true;
    opt.bugcheck_code = 0x7e;
    run_good(&opt, "MS Windows 32bit crash dump");
}

/* MXCSR and the debug registers a guest set reach its CONTEXTs, not reset values. */
static void run_debug_registers(WinGuestMode mode)
{
    static const char *const dr[] = { "dr0", "dr1", "dr2", "dr3", "dr6", "dr7" };
    WinGuestOptions opt;
    Fixture f;
    g_autoptr(GByteArray) want = NULL;
    uint8_t c[1232];
    Error *err = NULL;

    unit_options(&opt);
    opt.mode = mode;
    opt.smp = 2;
    fixture_init(&f, &opt);
    for (int i = 0; i < opt.smp; i++) {
        g_assert_true(x86_cpu_set_reg(&f.cpus[i], "mxcsr", 0x9fc0 + i, NULL));
        for (size_t k = 0; k < G_N_ELEMENTS(dr); k++) {
            g_assert_true(x86_cpu_set_reg(&f.cpus[i], dr[k],
                                          0x7000 + 0x100 * i + k, NULL));
        }
    }
    model_context(&f, 1, c);
    if (mode == WIN_GUEST_LONG4) {
        g_assert_cmphex(g32(c, 0x34), ==, 0x9fc1);
        g_assert_cmphex(g32(c, 0x118), ==, 0x9fc1);
        g_assert_cmphex(g64(c, 0x48), ==, 0x7100);
        g_assert_cmphex(g64(c, 0x70), ==, 0x7105);
    } else {
        g_assert_cmphex(g32(c, 0x04), ==, 0x7100);
        g_assert_cmphex(g32(c, 0x18), ==, 0x7105);
    }
    want = model_dump(&f, opt.smp, win_guest_va(f.g, WIN_GUEST_KDBG_OFF));
    g_assert_true(fixture_dump(&f, &err));
    g_assert_null(err);
    assert_file_equals(&f, want);
    fixture_free(&f);
}

static void test_debug_registers(void)
{
    run_debug_registers(WIN_GUEST_LONG4);
    run_debug_registers(WIN_GUEST_X86);
}

/* NumberProcessors far above the vCPU count: no allocation follows it. */
static void test_huge_number_processors(void)
{
    WinGuestOptions opt;

    unit_options(&opt);
    opt.smp = 2;
    opt.number_processors = 0xffffffffu;
    run_good(&opt, "MS Windows 64bit crash dump");
}

/* ---------------------------------------------------------------------- */
/* Warnings (checked in a subprocess, where stderr can be captured)          */
/* ---------------------------------------------------------------------- */

static void test_fewer_processors(void)
{
    if (g_test_subprocess()) {
        WinGuestOptions opt;
        Fixture f;
        g_autoptr(GByteArray) want = NULL;

        unit_options(&opt);
        opt.smp = 3;
        opt.number_processors = 1;
        fixture_init(&f, &opt);
        want = model_dump(&f, 1, win_guest_va(f.g, WIN_GUEST_KDBG_OFF));
        g_assert_true(fixture_dump(&f, NULL));
        assert_file_equals(&f, want);
        fixture_free(&f);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*warning: win-dump: number of QEMU CPUs is bigger than "
                              "NumberProcessors (1) in guest Windows*");
}

static void test_zero_processors(void)
{
    if (g_test_subprocess()) {
        WinGuestOptions opt;
        Fixture f;
        g_autoptr(GByteArray) want = NULL;

        unit_options(&opt);
        opt.number_processors = 0;
        fixture_init(&f, &opt);
        want = model_dump(&f, 0, win_guest_va(f.g, WIN_GUEST_KDBG_OFF));
        g_assert_true(fixture_dump(&f, NULL));
        assert_file_equals(&f, want);
        fixture_free(&f);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*NumberProcessors (0) in guest Windows*");
}

/* KiBugCheckData points nowhere: a warning, and no LIVE_SYSTEM_DUMP either. */
static void test_patch_warnings(void)
{
    if (g_test_subprocess()) {
        WinGuestOptions opt;
        Fixture f;
        uint64_t kdbg_pa, bad = 0xfffff80000100000ull;   /* not mapped */
        g_autofree char *got = NULL;
        uint8_t h[8192];
        gsize len;

        unit_options(&opt);
        fixture_init(&f, &opt);
        kdbg_pa = win_guest_kva_to_pa(f.g, win_guest_va(f.g, WIN_GUEST_KDBG_OFF));
        g_assert_true(physmem_write(kdbg_pa + 0x88, &bad, 8, NULL));
        memcpy(h, f.note + 24, 8192);
        p64(h, 0x18, 0x5555);
        p32(h, 0x38, 0);          /* stays 0: no bugcheck block was read */
        fixture_set_header(&f, h);
        g_assert_true(fixture_dump(&f, NULL));
        g_assert_true(g_file_get_contents(f.path, &got, &len, NULL));
        g_assert_cmphex(g64((uint8_t *)got, 0x18), ==, 0xfffffa8000000000ull);
        g_assert_cmphex(g32((uint8_t *)got, 0x38), ==, 0);
        fixture_free(&f);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*warning: win-dump: failed to read bugcheck data*");
}

/*
 * A KDBG that ends 4 bytes into MmPfnDatabase: QEMU warns, and then cannot
 * read KiProcessorBlock (the next page) either, so the dump fails.
 */
static void test_pfn_warning(void)
{
    if (g_test_subprocess()) {
        WinGuestOptions opt;
        Fixture f;
        uint8_t h[8192];
        uint64_t kdbg = WIN_GUEST_KVA64 + WIN_GUEST_KPAGES * PG - 0xc4;
        uint8_t kd[0xc4] = { 0 };
        Error *err = NULL;

        unit_options(&opt);
        fixture_init(&f, &opt);
        memcpy(kd + 0x10, "KDBG", 4);
        p64(kd, 0x88, win_guest_va(f.g, WIN_GUEST_BUGCHECK_OFF));
        g_assert_true(physmem_write(win_guest_kva_to_pa(f.g, kdbg), kd, sizeof(kd),
                                    NULL));
        memcpy(h, f.note + 24, 8192);
        p64(h, 0x80, kdbg);
        fixture_set_header(&f, h);
        g_assert_false(fixture_dump(&f, &err));
        g_assert_cmpstr(error_get_pretty(err), ==,
                        "win-dump: failed to read KiProcessorBlock");
        error_free(err);
        fixture_free(&f);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*warning: win-dump: failed to read MmPfnDatabase*");
}

/* ---------------------------------------------------------------------- */
/* Errors: the text, nothing written, RAM untouched (fixture_dump checks)    */
/* ---------------------------------------------------------------------- */

typedef void (*Corrupt)(Fixture *f, uint8_t *h);

static void expect_error(WinGuestMode mode, int smp, Corrupt corrupt, const char *text)
{
    WinGuestOptions opt;
    Fixture f;
    uint8_t h[8192];
    Error *err = NULL;
    g_autofree char *got = NULL;
    gsize len;

    unit_options(&opt);
    opt.mode = mode;
    opt.smp = smp;
    fixture_init(&f, &opt);
    memcpy(h, f.note + 24, f.g->x64 ? 8192 : 4096);
    corrupt(&f, h);
    fixture_set_header(&f, h);
    g_assert_false(fixture_dump(&f, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, text);
    error_free(err);
    g_assert_true(g_file_get_contents(f.path, &got, &len, NULL));
    g_assert_cmpuint(len, ==, 0);
    fixture_free(&f);
}

static void c_signature(Fixture *f, uint8_t *h)
{
    memcpy(h, "XAGE", 4);
}

static void c_valid_dump(Fixture *f, uint8_t *h)
{
    memcpy(h + 4, "DU32", 4);
}

static void c_kdbg_unmapped(Fixture *f, uint8_t *h)
{
    p64(h, 0x80, 0xfffff80000100000ull);
}

static void c_kdbg_both_bad(Fixture *f, uint8_t *h)
{
    /* Both candidates point at the bugcheck block: its tag bytes are 0x1111. */
    p64(h, 0x80, win_guest_va(f->g, WIN_GUEST_BUGCHECK_OFF));
    p64(h, 0x40, win_guest_va(f->g, WIN_GUEST_BUGCHECK_OFF) + 8);
}

static void c_kdbg_fallback_unmapped(Fixture *f, uint8_t *h)
{
    p64(h, 0x80, win_guest_va(f->g, WIN_GUEST_BUGCHECK_OFF));
    p64(h, 0x40, 0x1000);
}

static void c_kpb_unmapped(Fixture *f, uint8_t *h)
{
    uint64_t bad = 0xfffff80000200000ull;
    uint64_t pa = win_guest_kva_to_pa(f->g, win_guest_va(f->g, WIN_GUEST_KDBG_OFF));

    g_assert_true(physmem_write(pa + 0x218, &bad, 8, NULL));
}

static void c_prcb_unmapped(Fixture *f, uint8_t *h)
{
    uint64_t bad = 0xfffff80000300000ull;
    uint64_t pa = win_guest_kva_to_pa(f->g, win_guest_va(f->g, WIN_GUEST_KPB_OFF));

    g_assert_true(physmem_write(pa + 8, &bad, 8, NULL));
}

static void c_context_unmapped(Fixture *f, uint8_t *h)
{
    /* CPU 1's CONTEXT would run off the end of the mapped area. */
    uint64_t bad = WIN_GUEST_KVA64 + 16 * PG - 0x100;
    uint64_t pa = win_guest_kva_to_pa(f->g, win_guest_va(f->g, WIN_GUEST_PRCB_OFF(1)));

    g_assert_true(physmem_write(pa + WIN_GUEST_PRCB_CONTEXT, &bad, 8, NULL));
}

static void c_too_many_runs(Fixture *f, uint8_t *h)
{
    p32(h, 0x88, 44);
}

static void c_too_many_runs32(Fixture *f, uint8_t *h)
{
    p32(h, 0x64, 87);
}

static void c_run_outside_ram(Fixture *f, uint8_t *h)
{
    p64(h, 0x98 + 16 * 2 + 8, f->g->opt.ram_size / PG - 0x900 + 1);
}

static void c_run_in_hole(Fixture *f, uint8_t *h)
{
    p32(h, 0x6c + 8, 0xa0);     /* run 1 starts in the ROM/VGA hole */
}

static void c_run_overlap(Fixture *f, uint8_t *h)
{
    p64(h, 0x98 + 16 * 1 + 8, 0x801);   /* run 1 reaches into run 2 */
}

static void c_run_wrap(Fixture *f, uint8_t *h)
{
    p64(h, 0x98 + 16 * 2, 0xfffffffffffff000ull);
}

static void c_pages_overflow(Fixture *f, uint8_t *h)
{
    p64(h, 0x90, 1ull << 62);
}

static void c_note_kind(Fixture *f, uint8_t *h)
{
    /* A 32-bit-sized note claiming a 64-bit header. */
    memcpy(h + 4, "DU64", 4);
}

static void test_errors(void)
{
    expect_error(WIN_GUEST_LONG4, 1, c_signature,
                 "win-dump: invalid header, expected 'PAGE', got 'XAGE'");
    expect_error(WIN_GUEST_LONG4, 1, c_valid_dump,
                 "win-dump: invalid header, expected 'DUMP' or 'DU64', got 'DU32'");
    expect_error(WIN_GUEST_PAE, 1, c_note_kind,
                 "win-dump: invalid vmcoreinfo note size");
    expect_error(WIN_GUEST_LONG4, 1, c_kdbg_unmapped,
                 "win-dump: failed to read OwnerTag");
    expect_error(WIN_GUEST_LONG4, 1, c_kdbg_both_bad,
                 "win-dump: invalid KDBG OwnerTag, expected 'KDBG', got '33'");
    expect_error(WIN_GUEST_LONG4, 1, c_kdbg_fallback_unmapped,
                 "win-dump: failed to read OwnerTag");
    expect_error(WIN_GUEST_LONG4, 1, c_kpb_unmapped,
                 "win-dump: failed to read CPU #0 PRCB location");
    expect_error(WIN_GUEST_LONG4, 2, c_prcb_unmapped,
                 "win-dump: failed to read CPU #1 ContextFrame location");
    expect_error(WIN_GUEST_LONG4, 2, c_context_unmapped,
                 "win-dump: failed to save CPU #1 context");
    expect_error(WIN_GUEST_LONG4, 1, c_too_many_runs,
                 "win-dump: NumberOfRuns (44) is more than the 43 runs the header "
                 "holds");
    expect_error(WIN_GUEST_PAE, 1, c_too_many_runs32,
                 "win-dump: NumberOfRuns (87) is more than the 86 runs the header "
                 "holds");
    expect_error(WIN_GUEST_LONG4, 1, c_run_outside_ram,
                 "win-dump: memory run #2 (BasePage 0x900, PageCount 0x1701) is not "
                 "guest RAM");
    expect_error(WIN_GUEST_PAE, 1, c_run_in_hole,
                 "win-dump: memory run #1 (BasePage 0xa0, PageCount 0x700) is not "
                 "guest RAM");
    expect_error(WIN_GUEST_LONG4, 1, c_run_overlap,
                 "win-dump: memory runs overlap at guest-physical 0x900000");
    expect_error(WIN_GUEST_LONG4, 1, c_run_wrap,
                 "win-dump: memory run #2 (BasePage 0xfffffffffffff000, PageCount "
                 "0x1700) is not guest RAM");
    expect_error(WIN_GUEST_LONG4, 1, c_pages_overflow,
                 "win-dump: NumberOfPages (4611686018427387904) is too large");
}

static void test_no_note(void)
{
    WinGuestOptions opt;
    Fixture f;
    Error *err = NULL;

    unit_options(&opt);
    fixture_init(&f, &opt);
    f.s.guest_note = NULL;
    f.s.guest_note_size = 0;
    g_assert_false(fixture_dump(&f, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "win-dump: invalid vmcoreinfo note size");
    error_free(err);
    fixture_free(&f);
}

/* A full disk: the header write fails with its errno. */
static void test_write_error(void)
{
    WinGuestOptions opt;
    Fixture f;
    Error *err = NULL;
    int fd = open("/dev/full", O_WRONLY);

    if (fd < 0) {
        g_test_skip("no /dev/full");
        return;
    }
    unit_options(&opt);
    fixture_init(&f, &opt);
    dump_output_free(f.job.out);
    f.job.out = dump_output_new_fd(fd, false);
    g_assert_false(fixture_dump(&f, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "win-dump: failed to write header: No space left on device");
    error_free(err);
    fixture_free(&f);
}

/* Where guest-physical pa is in the file: header, then the runs back to back. */
static size_t file_offset(const WinGuest *g, uint64_t pa)
{
    size_t off = g->x64 ? 8192 : 4096;

    for (size_t i = 0; i < g->nruns; i++) {
        uint64_t base = g->runs[i].base_page * PG, size = g->runs[i].page_count * PG;

        if (pa >= base && pa < base + size) {
            return off + (pa - base);
        }
        off += size;
    }
    g_assert_not_reached();
}

/* Two PRCBs naming one CONTEXT: the later vCPU's bytes win, as in QEMU. */
static void test_shared_context(void)
{
    WinGuestOptions opt;
    Fixture f;
    g_autofree char *got = NULL;
    gsize len;
    uint8_t c1[1232];
    uint64_t pa, v;

    unit_options(&opt);
    opt.smp = 2;
    fixture_init(&f, &opt);
    pa = win_guest_kva_to_pa(f.g, win_guest_va(f.g, WIN_GUEST_PRCB_OFF(1)));
    v = GUINT64_TO_LE(win_guest_va(f.g, WIN_GUEST_CTX_OFF(0)));
    g_assert_true(physmem_write(pa + WIN_GUEST_PRCB_CONTEXT, &v, 8, NULL));
    g_assert_true(fixture_dump(&f, NULL));
    g_assert_true(g_file_get_contents(f.path, &got, &len, NULL));
    model_context(&f, 1, c1);
    for (size_t k = 0; k < sizeof(c1); k++) {
        uint64_t ka = win_guest_va(f.g, WIN_GUEST_CTX_OFF(0)) + k;

        g_assert_cmphex((uint8_t)got[file_offset(f.g, win_guest_kva_to_pa(f.g, ka))], ==,
                        c1[k]);
    }
    fixture_free(&f);
}

/*
 * An x86 header whose NumberOfPages reaches 4 GiB: QEMU keeps 32 bits of
 * RequiredDumpSpace; we complete Windows' LARGE_INTEGER (compat.md W7).
 */
static void test_x86_required_space_4g(void)
{
    WinGuestOptions opt;
    Fixture f;
    uint8_t h[4096];
    g_autofree char *got = NULL;
    gsize len;

    unit_options(&opt);
    opt.mode = WIN_GUEST_PAE;
    fixture_init(&f, &opt);
    memcpy(h, f.note + 24, 4096);
    p32(h, 0x68, 0x100000);
    fixture_set_header(&f, h);
    g_assert_true(fixture_dump(&f, NULL));
    g_assert_true(g_file_get_contents(f.path, &got, &len, NULL));
    g_assert_cmphex(g32((uint8_t *)got, 0xfa0), ==, 0x1000);
    g_assert_cmphex(g32((uint8_t *)got, 0xfa4), ==, 1);
    g_assert_cmpint(atomic_load(&f.job.total_size), ==, 0x100001000ll);
    fixture_free(&f);
}

/*
 * An x86 header with garbage in RequiredDumpSpace's high half, as a guest may
 * leave it: QEMU keeps the garbage, we write the whole LARGE_INTEGER (W7).
 */
static void test_x86_required_space_high_garbage(void)
{
    static const WinGuestMode modes[] = { WIN_GUEST_PAE, WIN_GUEST_X86 };

    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        WinGuestOptions opt;
        Fixture f;
        uint8_t h[4096];
        g_autofree char *got = NULL;
        gsize len;

        unit_options(&opt);
        opt.mode = modes[i];
        fixture_init(&f, &opt);
        memcpy(h, f.note + 24, 4096);
        p32(h, 0xfa4, 0xdeadbeef);
        fixture_set_header(&f, h);
        g_assert_true(fixture_dump(&f, NULL));
        g_assert_true(g_file_get_contents(f.path, &got, &len, NULL));
        uint64_t pages = g32(h, 0x68);
        g_assert_cmphex(g32((uint8_t *)got, 0xfa0), ==, 4096 + pages * 4096);
        g_assert_cmphex(g32((uint8_t *)got, 0xfa4), ==, 0);
        g_assert_cmpuint(len, ==, 4096 + pages * 4096);
        g_assert_cmpint(atomic_load(&f.job.total_size), ==, (int64_t)len);
        fixture_free(&f);
    }
}

/* quit during a dump: "dump: cancelled", and RAM as it was. */
static void test_cancel(void)
{
    WinGuestOptions opt;
    Fixture f;
    Error *err = NULL;

    unit_options(&opt);
    fixture_init(&f, &opt);
    atomic_store(&f.job.cancel, true);
    g_assert_false(fixture_dump(&f, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "dump: cancelled");
    error_free(err);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/win-dump/long4", test_long4);
    g_test_add_func("/win-dump/long4-bugcheck", test_long4_bugcheck);
    g_test_add_func("/win-dump/long4-kdbg-fallback", test_long4_kdbg_fallback);
    g_test_add_func("/win-dump/pae", test_pae);
    g_test_add_func("/win-dump/debug-registers", test_debug_registers);
    g_test_add_func("/win-dump/x86", test_x86);
    g_test_add_func("/win-dump/huge-number-processors", test_huge_number_processors);
    g_test_add_func("/win-dump/fewer-processors", test_fewer_processors);
    g_test_add_func("/win-dump/zero-processors", test_zero_processors);
    g_test_add_func("/win-dump/patch-warnings", test_patch_warnings);
    g_test_add_func("/win-dump/pfn-warning", test_pfn_warning);
    g_test_add_func("/win-dump/errors", test_errors);
    g_test_add_func("/win-dump/no-note", test_no_note);
    g_test_add_func("/win-dump/write-error", test_write_error);
    g_test_add_func("/win-dump/shared-context", test_shared_context);
    g_test_add_func("/win-dump/x86-required-space-4g", test_x86_required_space_4g);
    g_test_add_func("/win-dump/x86-required-space-high-garbage",
                    test_x86_required_space_high_garbage);
    g_test_add_func("/win-dump/cancel", test_cancel);
    return g_test_run();
}
