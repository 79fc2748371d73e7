/* Unit tests of -restore: synthetic vmcores restored exactly, malformed ones refused. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "hw/vmcoreinfo.h"
#include "sysemu/cpus.h"
#include "sysemu/machine.h"
#include "sysemu/physmem.h"

/* A QEMU-shaped ELF64 vmcore built in memory: header, shdrs, phdrs, notes, data. */
typedef struct Core {
    GByteArray *notes;
    GArray *loads;          /* uint64_t pairs: paddr, size */
    GByteArray *data;
    uint16_t machine;
    uint8_t cls;
} Core;

static void put_note(GByteArray *b, const char *name, uint32_t type, const void *desc,
                     uint32_t descsz)
{
    uint32_t hdr[3] = { GUINT32_TO_LE(strlen(name) + 1), GUINT32_TO_LE(descsz),
                        GUINT32_TO_LE(type) };
    static const uint8_t zero[4];
    size_t namesz = strlen(name) + 1;

    g_byte_array_append(b, (uint8_t *)hdr, 12);
    g_byte_array_append(b, (const uint8_t *)name, namesz);
    g_byte_array_append(b, zero, (4 - namesz % 4) % 4);
    g_byte_array_append(b, desc, descsz);
    g_byte_array_append(b, zero, (4 - descsz % 4) % 4);
}

static Core *core_new(void)
{
    Core *c = g_new0(Core, 1);

    c->notes = g_byte_array_new();
    c->loads = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    c->data = g_byte_array_new();
    c->machine = 62;
    c->cls = 2;
    return c;
}

static void core_free(Core *c)
{
    g_byte_array_free(c->notes, TRUE);
    g_array_free(c->loads, TRUE);
    g_byte_array_free(c->data, TRUE);
    g_free(c);
}

static void add_load(Core *c, uint64_t paddr, const void *bytes, uint64_t size)
{
    g_array_append_val(c->loads, paddr);
    g_array_append_val(c->loads, size);
    g_byte_array_append(c->data, bytes, size);
}

/* One vCPU: NT_PRSTATUS (x86_64) and a QEMU note with recognisable values. */
static void add_cpu(Core *c, int index, bool long_mode)
{
    uint8_t prs[336] = { 0 }, q[440] = { 0 };
    uint32_t pid = index + 1;
    uint64_t v;

    memcpy(prs + 32, &pid, 4);
    v = 0x1000 + index;
    memcpy(prs + 112 + 10 * 8, &v, 8);          /* rax */
    put_note(c->notes, "CORE", 1, prs, sizeof(prs));
    *(uint32_t *)q = 1;
    *(uint32_t *)(q + 4) = 440;
    for (int r = 0; r < 16; r++) {
        v = 0x1111111111111111ULL * (r + 1) + index;
        memcpy(q + 8 + r * 8, &v, 8);
    }
    v = 0xffffffff81000000ULL + index;
    memcpy(q + 136, &v, 8);                      /* rip */
    v = 0x246;
    memcpy(q + 144, &v, 8);
    *(uint32_t *)(q + 152) = 0x10;               /* cs selector, limit, flags */
    *(uint32_t *)(q + 156) = 0xffffffff;
    *(uint32_t *)(q + 160) = long_mode ? 0x00af9b00 : 0x00cf9b00;
    v = 0xfffffe0000001000ULL;                   /* gdt base */
    memcpy(q + 344 + 16, &v, 8);
    *(uint32_t *)(q + 344 + 4) = 0x7f;
    v = long_mode ? 0x80050033 : 0x80000011;
    memcpy(q + 392, &v, 8);
    v = 0x1a00000;
    memcpy(q + 392 + 24, &v, 8);                 /* cr3 */
    v = long_mode ? 0x6a0 : 0x10;             /* PAE, or PSE only */
    memcpy(q + 392 + 32, &v, 8);                 /* cr4 */
    v = 0xffff888000abc000ULL;
    memcpy(q + 432, &v, 8);
    put_note(c->notes, "QEMU", 0, q, sizeof(q));
}

/* Writes c as QEMU 7.2 lays it out (section headers before program headers). */
static char *core_write(Core *c, const char *dir, const char *name)
{
    GByteArray *f = g_byte_array_new();
    uint32_t nload = c->loads->len / 2;
    uint64_t phoff = 64 + 2 * 64, note_off = phoff + (1 + nload) * 56;
    uint64_t data_off = note_off + c->notes->len, at = data_off;
    uint8_t eh[64] = { 0x7f, 'E', 'L', 'F', c->cls, 1, 1 };
    uint8_t sh[128] = { 0 };
    char *path = g_build_filename(dir, name, NULL);

    *(uint16_t *)(eh + 16) = 4;
    *(uint16_t *)(eh + 18) = c->machine;
    *(uint32_t *)(eh + 20) = 1;
    *(uint64_t *)(eh + 32) = phoff;
    *(uint64_t *)(eh + 40) = 64;
    *(uint16_t *)(eh + 52) = 64;
    *(uint16_t *)(eh + 54) = 56;
    /* 65535 headers or more: PN_XNUM, the count in section header 0's sh_info */
    *(uint16_t *)(eh + 56) = 1 + nload >= 0xffff ? 0xffff : 1 + nload;
    *(uint32_t *)(sh + 44) = 1 + nload >= 0xffff ? 1 + nload : 0;
    *(uint16_t *)(eh + 58) = 64;
    *(uint16_t *)(eh + 60) = 2;
    g_byte_array_append(f, eh, 64);
    g_byte_array_append(f, sh, 128);
    {
        uint8_t ph[56] = { 0 };
        *(uint32_t *)ph = 4;
        *(uint64_t *)(ph + 8) = note_off;
        *(uint64_t *)(ph + 32) = c->notes->len;
        *(uint64_t *)(ph + 40) = c->notes->len;
        g_byte_array_append(f, ph, 56);
    }
    for (uint32_t i = 0; i < nload; i++) {
        uint8_t ph[56] = { 0 };
        uint64_t pa = g_array_index(c->loads, uint64_t, 2 * i);
        uint64_t sz = g_array_index(c->loads, uint64_t, 2 * i + 1);
        *(uint32_t *)ph = 1;
        *(uint64_t *)(ph + 8) = at;
        *(uint64_t *)(ph + 16) = pa;
        *(uint64_t *)(ph + 24) = pa;
        *(uint64_t *)(ph + 32) = sz;
        *(uint64_t *)(ph + 40) = sz;
        g_byte_array_append(f, ph, 56);
        at += sz;
    }
    g_byte_array_append(f, c->notes->data, c->notes->len);
    g_byte_array_append(f, c->data->data, c->data->len);
    g_assert_true(g_file_set_contents(path, (char *)f->data, f->len, NULL));
    g_byte_array_free(f, TRUE);
    return path;
}

static bool try_restore_max(const char *path, uint64_t max_ram, char **msg)
{
    Error *err = NULL;
    MachineOptions o = { .machine_type = (char *)"pc", .smp = 1,
                         .restore = (char *)path, .restore_max_ram = max_ram };
    bool ok = machine_init(&o, &err);

    if (!ok) {
        *msg = g_strdup(error_get_pretty(err));
        error_free(err);
        /* nothing may be left of a refused file */
        g_assert_cmpuint(physmem_block_count(), ==, 0);
        g_assert_cmpint(machine_cpu_count(), ==, 0);
    }
    return ok;
}

static bool try_restore(const char *path, char **msg)
{
    return try_restore_max(path, 0, msg);
}

static char *tmpdir;

/* The VMCOREINFO note is in RAM: the device points at that copy. */
static void test_restore_roundtrip(void)
{
    Core *c = core_new();
    g_autofree uint8_t *low = g_malloc0(0xc0000);
    g_autofree uint8_t *high = g_malloc0(0x300000);
    g_autofree uint8_t *bios = g_malloc(0x40000);
    const char *text = "OSRELEASE=6.1.0\nPAGESIZE=4096\n";
    GByteArray *vi = g_byte_array_new();
    g_autofree char *path = NULL;
    g_autofree char *msg = NULL;
    const VMCoreInfoState *vs;
    uint8_t got[16];

    memset(bios, 0xea, 0x40000);
    memcpy(high + 0x1000, "HIGHPAGE", 8);
    put_note(vi, "VMCOREINFO", 0, text, strlen(text));
    memcpy(high + 0x200000, vi->data, vi->len);   /* the guest's copy at 0x300000 */
    add_cpu(c, 0, true);
    add_cpu(c, 1, false);
    g_byte_array_append(c->notes, vi->data, vi->len);
    add_load(c, 0, low, 0xc0000);
    add_load(c, 0x100000, high, 0x300000);
    add_load(c, 0xfffc0000, bios, 0x40000);
    path = core_write(c, tmpdir, "good.core");

    g_assert_true(try_restore(path, &msg));
    g_assert_cmpuint(physmem_block_count(), ==, 3);
    g_assert_cmpstr(physmem_block(0)->name, ==, "pc.ram");
    g_assert_cmphex(physmem_block(1)->gpa, ==, 0x100000);
    g_assert_cmphex(physmem_block(1)->size, ==, 0x300000);
    g_assert_cmpstr(physmem_block(2)->name, ==, "pc.bios");
    g_assert_true(physmem_block(2)->readonly);
    g_assert_true(physmem_read(0x101000, got, 8, NULL));
    g_assert(memcmp(got, "HIGHPAGE", 8) == 0);
    g_assert_true(physmem_read(0xfffffff0, got, 1, NULL));
    g_assert_cmpuint(got[0], ==, 0xea);

    g_assert_cmpint(machine_cpu_count(), ==, 2);
    for (int i = 0; i < 2; i++) {
        CPUX86State *env = &machine_cpu(i)->env;
        g_assert_cmphex(env->regs[R_EAX], ==, 0x1111111111111111ULL + i);
        g_assert_cmphex(env->regs[R_EBX], ==, 0x2222222222222222ULL + i);
        g_assert_cmphex(env->regs[R_ESP], ==, 0x7777777777777777ULL + i);
        g_assert_cmphex(env->regs[R_R15], ==, 0x1111111111111111ULL * 16 + i);
        g_assert_cmphex(env->eip, ==, 0xffffffff81000000ULL + i);
        g_assert_cmphex(env->eflags, ==, 0x246);
        g_assert_cmphex(env->segs[R_CS].selector, ==, 0x10);
        g_assert_cmphex(env->gdt.base, ==, 0xfffffe0000001000ULL);
        g_assert_cmphex(env->gdt.limit, ==, 0x7f);
        g_assert_cmphex(env->cr[3], ==, 0x1a00000);
        g_assert_cmphex(env->kernelgsbase, ==, 0xffff888000abc000ULL);
    }
    /* EFER rule: vCPU 0 of an EM_X86_64 file and a 64-bit CS are long mode... */
    g_assert_cmphex(machine_cpu(0)->env.efer, ==, 0x500);
    /* ...vCPU 1 has paging without PAE: not long mode, whatever its rip */
    g_assert_cmphex(machine_cpu(1)->env.efer, ==, 0);

    vs = vmcoreinfo_find();
    g_assert_nonnull(vs);
    g_assert_true(vs->has_vmcoreinfo);
    g_assert_cmphex(vs->paddr, ==, 0x300000);
    g_assert_cmpuint(vs->size, ==, vi->len);
    machine_cleanup();
    g_byte_array_free(vi, TRUE);
    core_free(c);
}

/* A note that is nowhere in RAM is placed in zeroed RAM so later dumps carry it. */
static void test_restore_note_placed(void)
{
    Core *c = core_new();
    g_autofree uint8_t *ram = g_malloc0(0x200000);
    const char *text = "OSRELEASE=placed\n";
    GByteArray *vi = g_byte_array_new();
    g_autofree char *path = NULL;
    g_autofree char *msg = NULL;
    g_autofree uint8_t *copy = NULL;
    const VMCoreInfoState *vs;

    memset(ram, 0x5a, 0x100000);
    put_note(vi, "VMCOREINFO", 0, text, strlen(text));
    add_cpu(c, 0, true);
    g_byte_array_append(c->notes, vi->data, vi->len);
    add_load(c, 0x100000, ram, 0x200000);
    path = core_write(c, tmpdir, "placed.core");
    g_assert_true(try_restore(path, &msg));
    vs = vmcoreinfo_find();
    g_assert_nonnull(vs);
    g_assert_true(vs->has_vmcoreinfo);
    g_assert_cmphex(vs->paddr, >=, 0x200000);
    copy = g_malloc(vi->len);
    g_assert_true(physmem_read(vs->paddr, copy, vi->len, NULL));
    g_assert(memcmp(copy, vi->data, vi->len) == 0);
    machine_cleanup();
    g_byte_array_free(vi, TRUE);
    core_free(c);
}

static char *write_raw(const char *name, const void *data, size_t len)
{
    char *path = g_build_filename(tmpdir, name, NULL);

    g_assert_true(g_file_set_contents(path, data, len, NULL));
    return path;
}

static GByteArray *good_file(void)
{
    Core *c = core_new();
    uint8_t ram[0x2000] = { 1 };
    g_autofree char *path = NULL;
    char *data;
    gsize len;
    GByteArray *b;

    add_cpu(c, 0, true);
    add_load(c, 0, ram, sizeof(ram));
    add_load(c, 0x100000, ram, sizeof(ram));
    path = core_write(c, tmpdir, "base.core");
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    b = g_byte_array_new_take((uint8_t *)data, len);
    core_free(c);
    return b;
}

static void expect_refused(const char *name, GByteArray *b, size_t len,
                           const char *fragment)
{
    g_autofree char *path = write_raw(name, b->data, len);
    g_autofree char *msg = NULL;

    g_assert_false(try_restore(path, &msg));
    if (!strstr(msg, fragment)) {
        g_error("%s: '%s' does not mention '%s'", name, msg, fragment);
    }
}

static void test_restore_malformed(void)
{
    GByteArray *b = good_file();
    g_autofree char *msg = NULL;
    uint64_t phoff = 64 + 128;
    uint8_t *ph1 = NULL;

    /* the base file itself restores */
    {
        g_autofree char *p = write_raw("ok.core", b->data, b->len);
        g_assert_true(try_restore(p, &msg));
        machine_cleanup();
    }
    /* truncated at every interesting place */
    expect_refused("t1", b, 10, "truncated");
    expect_refused("t2", b, 100, "truncated");
    expect_refused("t3", b, phoff + 20, "truncated");
    expect_refused("t4", b, b->len - 1, "truncated");
    expect_refused("empty", b, 0, "is empty");

    b->data[4] = 3;
    expect_refused("class", b, b->len, "ELF class 3");
    b->data[4] = 2;
    b->data[5] = 2;
    expect_refused("endian", b, b->len, "little-endian");
    b->data[5] = 1;
    b->data[16] = 2;
    expect_refused("exec", b, b->len, "ET_CORE");
    b->data[16] = 4;
    b->data[18] = 40;
    expect_refused("arm", b, b->len, "not x86");
    b->data[18] = 62;
    memcpy(b->data, "\177ELG", 4);
    expect_refused("magic", b, b->len, "not an ELF");
    memcpy(b->data, "\177ELF", 4);

    /* overlapping segments: the second PT_LOAD moved onto the first */
    ph1 = b->data + phoff + 2 * 56;
    *(uint64_t *)(ph1 + 24) = 0x1000;
    expect_refused("overlap", b, b->len, "overlap");
    *(uint64_t *)(ph1 + 24) = 0x100000;
    /* filesz != memsz: a paging=true dump */
    *(uint64_t *)(ph1 + 40) = 0x4000;
    expect_refused("paging", b, b->len, "paging=false");
    *(uint64_t *)(ph1 + 40) = 0x2000;
    /* a segment whose data lies beyond the file */
    *(uint64_t *)(ph1 + 8) = ~0ULL - 5;
    expect_refused("offset", b, b->len, "truncated");
    *(uint64_t *)(ph1 + 8) = b->len - 0x2000;
    /* two segments on the same file bytes: each would become its own RAM */
    *(uint64_t *)(ph1 + 8) = *(uint64_t *)(ph1 - 56 + 8);
    expect_refused("shared-bytes", b, b->len, "share file bytes");
    *(uint64_t *)(ph1 + 8) = *(uint64_t *)(ph1 - 56 + 8) + 0x1000;
    expect_refused("shared-half", b, b->len, "share file bytes");
    *(uint64_t *)(ph1 + 8) = b->len - 0x2000;
    /* wrap-around address */
    *(uint64_t *)(ph1 + 24) = ~0ULL - 0xfff;
    expect_refused("wrap", b, b->len, "wraps");
    *(uint64_t *)(ph1 + 24) = 0x100000;

    /* huge counts: PN_XNUM with an absurd sh_info, and a huge note */
    *(uint16_t *)(b->data + 56) = 0xffff;
    *(uint32_t *)(b->data + 64 + 44) = 0x7fffffff;
    expect_refused("xnum", b, b->len, "program headers");
    *(uint16_t *)(b->data + 56) = 3;
    {
        uint8_t *ph0 = b->data + phoff;
        uint64_t note_off = *(uint64_t *)(ph0 + 8);
        uint32_t saved = *(uint32_t *)(b->data + note_off + 4);
        *(uint32_t *)(b->data + note_off + 4) = 0xfffffff0;
        expect_refused("note", b, b->len, "more than the note segment holds");
        *(uint32_t *)(b->data + note_off + 4) = 100;
        expect_refused("prsize", b, b->len, "NT_PRSTATUS");
        *(uint32_t *)(b->data + note_off + 4) = saved;
        *(uint64_t *)(ph0 + 32) = 1ULL << 40;
        expect_refused("notesize", b, b->len, "truncated");
    }
    g_byte_array_free(b, TRUE);

    /* not a regular file, missing file */
    g_assert_false(try_restore(tmpdir, &msg));
    g_clear_pointer(&msg, g_free);
    g_assert_false(try_restore("/nonexistent/core", &msg));
    g_assert_nonnull(strstr(msg, "cannot open"));
}

/*
 * Total RAM is capped by -restore-max-ram (64 GiB by default): a sparse
 * file can describe terabytes that a restore would read and a dump write.
 */
static void test_restore_max_ram(void)
{
    GByteArray *b = good_file();
    g_autofree char *path = write_raw("cap.core", b->data, b->len);
    g_autofree char *msg = NULL;
    uint8_t *ph1 = b->data + 64 + 128 + 2 * 56;
    uint64_t big = (64ULL << 30) + 0x1000;
    int fd;

    /* 16 KiB of RAM: refused under an 8 KiB cap, accepted under 16 KiB */
    g_assert_false(try_restore_max(path, 0x2000, &msg));
    g_assert_nonnull(strstr(msg, "-restore-max-ram"));
    g_clear_pointer(&msg, g_free);
    g_assert_true(try_restore_max(path, 0x4000, &msg));
    machine_cleanup();

    /* the default: one segment of 64 GiB + 4 KiB in a sparse file */
    *(uint64_t *)(ph1 + 8) = b->len;
    *(uint64_t *)(ph1 + 32) = big;
    *(uint64_t *)(ph1 + 40) = big;
    g_assert_true(g_file_set_contents(path, (char *)b->data, b->len, NULL));
    fd = open(path, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, b->len + big), ==, 0);
    close(fd);
    g_assert_false(try_restore(path, &msg));
    g_assert_nonnull(strstr(msg, "more than the 65536 MiB -restore-max-ram allows"));
    g_byte_array_free(b, TRUE);
}

/*
 * 65535 segments (QEMU's PN_XNUM case) restore: they share one host
 * mapping instead of exceeding vm.max_map_count with one each.
 */
static void test_restore_many_segments(void)
{
    enum { N = 65535 };
    Core *c = core_new();
    g_autofree char *path = NULL;
    g_autofree char *msg = NULL;

    add_cpu(c, 0, true);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t bytes[16] = { 0 };

        /* mostly zero, so the restored RAM stays unbacked */
        if (i % 1024 == 0) {
            memcpy(bytes, &i, sizeof(i));
            bytes[15] = 0xa5;
        }
        add_load(c, 0x100000 + (uint64_t)i * 0x1000, bytes, sizeof(bytes));
    }
    path = core_write(c, tmpdir, "many.core");
    core_free(c);
    if (!try_restore(path, &msg)) {
        g_error("%s", msg);
    }
    g_assert_cmpuint(physmem_block_count(), ==, N);
    for (uint32_t i = 0; i < N; i += 1024) {
        uint8_t got[16];
        uint32_t v;

        g_assert_true(physmem_read(0x100000 + (uint64_t)i * 0x1000, got, 16, NULL));
        memcpy(&v, got, 4);
        g_assert_cmpuint(v, ==, i);
        g_assert_cmpuint(got[15], ==, 0xa5);
    }
    machine_cleanup();
    unlink(path);
}

/* The header fields the parser reads, little-endian, from a file that may be short. */
static uint64_t get_le(const uint8_t *f, size_t len, uint64_t off, int size)
{
    uint64_t v = 0;

    g_assert_true(off <= len && size <= (int)(len - off));
    for (int i = size - 1; i >= 0; i--) {
        v = v << 8 | f[off + i];
    }
    return v;
}

/*
 * What an accepted file must have produced, read from its own headers the way
 * the ELF format defines them: one RAM block per PT_LOAD holding exactly the
 * file's bytes, and one vCPU per CORE NT_PRSTATUS note.
 */
static void check_restored_as_file(const uint8_t *f, size_t len)
{
    bool is64 = f[4] == 2;
    uint64_t phoff = get_le(f, len, is64 ? 32 : 28, is64 ? 8 : 4);
    uint64_t shoff = get_le(f, len, is64 ? 40 : 32, is64 ? 8 : 4);
    uint32_t phnum = get_le(f, len, is64 ? 56 : 44, 2);
    uint32_t phentsize = is64 ? 56 : 32;
    size_t loads = 0;
    int cpus = 0;
    const VMCoreInfoState *vs = vmcoreinfo_find();

    if (phnum == 0xffff) {
        phnum = get_le(f, len, shoff + (is64 ? 44 : 28), 4);
    }
    for (uint32_t i = 0; i < phnum; i++) {
        uint64_t p = phoff + (uint64_t)i * phentsize;
        uint32_t type = get_le(f, len, p, 4);
        uint64_t off = get_le(f, len, p + (is64 ? 8 : 4), is64 ? 8 : 4);
        uint64_t paddr = get_le(f, len, p + (is64 ? 24 : 12), is64 ? 8 : 4);
        uint64_t filesz = get_le(f, len, p + (is64 ? 32 : 16), is64 ? 8 : 4);
        uint64_t memsz = get_le(f, len, p + (is64 ? 40 : 20), is64 ? 8 : 4);

        if (type == 1 && memsz) {
            g_autofree uint8_t *got = g_malloc(filesz);

            g_assert_cmpuint(filesz, ==, memsz);
            g_assert_true(off <= len && filesz <= len - off);
            g_assert_true(physmem_read(paddr, got, filesz, NULL));
            for (uint64_t k = 0; k < filesz; k++) {
                /* A guest note not found in RAM is placed in a zero area. */
                bool in_note = vs && vs->has_vmcoreinfo && paddr + k >= vs->paddr &&
                               paddr + k - vs->paddr < vs->size;
                if (got[k] != f[off + k]) {
                    g_assert_true(in_note);
                    g_assert_cmpuint(f[off + k], ==, 0);
                }
            }
            loads++;
        } else if (type == 4) {
            /* Notes: stop at an all-zero header, as Linux's terminator. */
            for (uint64_t n = off; n + 12 <= off + filesz;) {
                uint32_t namesz = get_le(f, len, n, 4);
                uint32_t descsz = get_le(f, len, n + 4, 4);
                uint32_t ntype = get_le(f, len, n + 8, 4);
                char name[16] = { 0 };

                if (!namesz && !descsz && !ntype) {
                    break;
                }
                memcpy(name, f + n + 12, MIN(namesz, sizeof(name) - 1));
                if (namesz && namesz <= sizeof(name)) {
                    name[namesz - 1] = '\0';
                }
                cpus += !strcmp(name, "CORE") && ntype == 1;
                n += 12 + (((uint64_t)namesz + 3) & ~3ULL) +
                     (((uint64_t)descsz + 3) & ~3ULL);
            }
        }
    }
    g_assert_cmpuint(physmem_block_count(), ==, loads);
    g_assert_cmpint(machine_cpu_count(), ==, cpus);
}

/*
 * Random corruption (run under ASan in CI): a refused file says why and
 * leaves no machine (try_restore checks that); an accepted one restores what
 * its headers describe. Both outcomes must occur, or the corruption tested
 * nothing.
 */
static void test_restore_fuzz(void)
{
    GByteArray *b = good_file();
    GRand *r = g_rand_new_with_seed(1234);
    int accepted = 0, refused = 0;

    for (int i = 0; i < 300; i++) {
        g_autoptr(GByteArray) m = g_byte_array_sized_new(b->len);
        g_autofree char *path = NULL;
        g_autofree char *msg = NULL;
        int flips = g_rand_int_range(r, 1, 8);
        guint len;

        g_byte_array_append(m, b->data, b->len);
        for (int f = 0; f < flips; f++) {
            /* mostly the headers and notes, where the parser looks */
            guint at = g_rand_int_range(r, 0, MIN(m->len, 2048));
            m->data[at] = g_rand_int_range(r, 0, 256);
        }
        len = g_rand_int_range(r, 0, 3) ? m->len : (guint)g_rand_int_range(r, 0, m->len);
        path = write_raw("fuzz.core", m->data, len);
        if (try_restore(path, &msg)) {
            check_restored_as_file(m->data, len);
            machine_cleanup();
            accepted++;
        } else {
            g_assert_nonnull(msg);
            g_assert_cmpuint(strlen(msg), >, 0);
            refused++;
        }
    }
    g_test_message("fuzz: %d accepted, %d refused", accepted, refused);
    g_assert_cmpint(accepted, >, 10);
    g_assert_cmpint(refused, >, 10);
    g_rand_free(r);
    g_byte_array_free(b, TRUE);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("restore-XXXXXX", NULL);
    g_test_add_func("/restore/roundtrip", test_restore_roundtrip);
    g_test_add_func("/restore/note-placed", test_restore_note_placed);
    g_test_add_func("/restore/malformed", test_restore_malformed);
    g_test_add_func("/restore/max-ram", test_restore_max_ram);
    g_test_add_func("/restore/many-segments", test_restore_many_segments);
    g_test_add_func("/restore/fuzz", test_restore_fuzz);
    ret = g_test_run();
    {
        g_autoptr(GDir) d = g_dir_open(tmpdir, 0, NULL);
        const char *n;
        while (d && (n = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(tmpdir, n, NULL);
            unlink(p);
        }
        rmdir(tmpdir);
    }
    return ret;
}
