/* Unit tests of the kdump-compressed writer over guests built in memory. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "config-host.h"
#include "dump/dump-compress.h"
#include "test-kdump-util.h"

#ifdef CONFIG_LZO
#include <lzo/lzo1x.h>
#endif
#ifdef CONFIG_SNAPPY
#include <snappy-c.h>
#endif
#ifdef CONFIG_ZSTD
#include <zstd.h>
#endif

#define PS 4096

static char *tmpdir;

static const uint32_t all_flags[] = {
    DUMP_DH_COMPRESSED_ZLIB, DUMP_DH_COMPRESSED_LZO, DUMP_DH_COMPRESSED_SNAPPY,
    DUMP_DH_COMPRESSED_ZSTD,
};

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static GBytes *read_file(const char *path)
{
    gchar *data;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_bytes_new_take(data, len);
}

static uint32_t le32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_LE(v);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_LE(v);
}

static const char vmcoreinfo_text[] =
    "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nNUMBER(phys_base)=0x2000000\n";

/*
 * Two vCPU notes, a VMCOREINFO note and this RAM: [0, 640K) mixed,
 * [1M, 1M+2M) mixed, and [4G, 4G+256K) with text, zero and random pages.
 */
static KdumpTestGuest *small_guest(void)
{
    KdumpTestGuest *g = kdump_test_guest_new();
    uint8_t prstatus[336] = { 1, 2, 3 };
    uint8_t qemu[0x1b0] = { 4, 5, 6 };

    kdump_test_guest_add_note(g, "CORE", NT_PRSTATUS, prstatus, sizeof(prstatus),
                              false);
    kdump_test_guest_add_note(g, "CORE", NT_PRSTATUS, prstatus, sizeof(prstatus),
                              false);
    kdump_test_guest_add_note(g, "QEMU", 0, qemu, sizeof(qemu), false);
    kdump_test_guest_add_note(g, "QEMU", 0, qemu, sizeof(qemu), false);
    kdump_test_guest_add_note(g, "VMCOREINFO", 0, vmcoreinfo_text,
                              strlen(vmcoreinfo_text), true);
    g->phys_base = 0x2000000;
    kdump_test_fill_mix(kdump_test_guest_add_block(g, 0, 640 * 1024), 640 * 1024,
                        PS, 1);
    kdump_test_fill_mix(kdump_test_guest_add_block(g, 0x100000, 0x200000), 0x200000,
                        PS, 2);
    kdump_test_fill_mix(kdump_test_guest_add_block(g, 0x100000000ull, 0x40000),
                        0x40000, PS, 3);
    return g;
}

static GBytes *write_dump(KdumpTestGuest *g, uint32_t flag, bool raw, int threads,
                          const char *name)
{
    g_autofree char *path = tmp_path(name);
    g_autofree char *msg = NULL;

    if (!kdump_test_write(g, flag, raw, threads, path, &msg)) {
        g_error("%s: %s", name, msg);
    }
    return read_file(path);
}

/* ---------------------------------------------------------------------- */
/* A reader written for these tests: decodes a raw (reassembled) file.      */
/* ---------------------------------------------------------------------- */

typedef struct Parsed {
    const uint8_t *f;
    size_t len;
    uint32_t status, block_size, sub_hdr_size, bitmap_blocks, nr_cpus;
    uint64_t max_mapnr, offset_note, note_size;
    uint64_t offset_vmcoreinfo, size_vmcoreinfo, phys_base;
    uint64_t bitmap_off, len_bitmap, desc_off;
} Parsed;

static void parse64(Parsed *p, const uint8_t *f, size_t len)
{
    const uint8_t *sh = f + PS;

    p->f = f;
    p->len = len;
    g_assert_cmpuint(len, >, PS + 104);
    g_assert_cmpmem(f, 8, "KDUMP   ", 8);
    g_assert_cmpuint(le32(f + 8), ==, 6);
    p->status = le32(f + 424);
    p->block_size = le32(f + 428);
    p->sub_hdr_size = le32(f + 432);
    p->bitmap_blocks = le32(f + 436);
    p->nr_cpus = le32(f + 460);
    p->phys_base = le64(sh);
    g_assert_cmpuint(le32(sh + 8), ==, 1);            /* dump_level */
    p->offset_vmcoreinfo = le64(sh + 32);
    p->size_vmcoreinfo = le64(sh + 40);
    p->offset_note = le64(sh + 48);
    p->note_size = le64(sh + 56);
    p->max_mapnr = le64(sh + 96);
    g_assert_cmpuint(le32(f + 440), ==, MIN(p->max_mapnr, UINT32_MAX));
    p->bitmap_off = (1 + (uint64_t)p->sub_hdr_size) * PS;
    p->len_bitmap = (uint64_t)p->bitmap_blocks / 2 * PS;
    p->desc_off = p->bitmap_off + 2 * p->len_bitmap;
}

static bool bit_set(const Parsed *p, uint64_t pfn)
{
    uint64_t off = p->bitmap_off + p->len_bitmap + pfn / 8;

    return off < p->len && (p->f[off] >> (pfn % 8)) & 1;
}

/* The page of pfn, decompressed, as crash and libkdumpfile compute it. */
static void read_page(const Parsed *p, uint64_t pfn, uint8_t *out)
{
    uint64_t idx = 0, d;
    const uint8_t *pd;
    uint64_t off;
    uint32_t size, flags;

    g_assert_true(bit_set(p, pfn));
    for (uint64_t q = 0; q < pfn / 8; q++) {
        idx += __builtin_popcount(p->f[p->bitmap_off + p->len_bitmap + q]);
    }
    for (uint64_t q = pfn & ~7ull; q < pfn; q++) {
        idx += bit_set(p, q);
    }
    d = p->desc_off + idx * 24;
    g_assert_cmpuint(d + 24, <=, p->len);
    pd = p->f + d;
    off = le64(pd);
    size = le32(pd + 8);
    flags = le32(pd + 12);
    g_assert_cmpuint(le64(pd + 16), ==, 0);
    g_assert_cmpuint(size, <=, PS);
    g_assert_cmpuint(off + size, <=, p->len);
    if (flags == 0) {
        g_assert_cmpuint(size, ==, PS);
        memcpy(out, p->f + off, PS);
        return;
    }
    g_assert_cmpuint(flags, ==, p->status);
    g_assert_cmpuint(size, <, PS);
    switch (flags) {
    case DUMP_DH_COMPRESSED_ZLIB: {
        uLongf n = PS;

        g_assert_cmpint(uncompress(out, &n, p->f + off, size), ==, Z_OK);
        g_assert_cmpuint(n, ==, PS);
        break;
    }
#ifdef CONFIG_LZO
    case DUMP_DH_COMPRESSED_LZO: {
        lzo_uint n = PS;

        g_assert_cmpint(lzo1x_decompress_safe(p->f + off, size, out, &n, NULL), ==,
                        LZO_E_OK);
        g_assert_cmpuint(n, ==, PS);
        break;
    }
#endif
#ifdef CONFIG_SNAPPY
    case DUMP_DH_COMPRESSED_SNAPPY: {
        size_t n = PS;

        g_assert_cmpint(snappy_uncompress((const char *)p->f + off, size,
                                          (char *)out, &n), ==, SNAPPY_OK);
        g_assert_cmpuint(n, ==, PS);
        break;
    }
#endif
#ifdef CONFIG_ZSTD
    case DUMP_DH_COMPRESSED_ZSTD:
        g_assert_cmpuint(ZSTD_decompress(out, PS, p->f + off, size), ==, PS);
        break;
#endif
    default:
        g_assert_not_reached();
    }
}

/* Every pfn of every block reads back as guest RAM (zero outside blocks). */
static void check_contents(const Parsed *p, const KdumpTestGuest *g)
{
    uint8_t page[PS], want[PS];

    for (size_t i = 0; i < g->blocks.num; i++) {
        const DumpGuestBlock *b = &g->blocks.blocks[i];

        for (uint64_t pfn = b->target_start / PS; pfn * PS < b->target_end; pfn++) {
            memset(want, 0, PS);
            for (size_t j = 0; j < g->blocks.num; j++) {
                const DumpGuestBlock *c = &g->blocks.blocks[j];
                uint64_t lo = MAX(c->target_start, pfn * PS);
                uint64_t hi = MIN(c->target_end, (pfn + 1) * PS);

                if (lo < hi) {
                    memcpy(want + (lo - pfn * PS), c->host_addr + (lo - c->target_start),
                           hi - lo);
                }
            }
            read_page(p, pfn, page);
            g_assert_cmpmem(page, PS, want, PS);
        }
    }
}

/* ---------------------------------------------------------------------- */

static void test_header_fields(void)
{
    g_autoptr(GBytes) f = NULL;
    KdumpTestGuest *g = small_guest();
    Parsed p;
    size_t len;
    const uint8_t *d;
    uint64_t vmci;

    f = write_dump(g, DUMP_DH_COMPRESSED_ZLIB, true, 2, "hdr.kdump");
    d = g_bytes_get_data(f, &len);
    parse64(&p, d, len);
    g_assert_cmpstr((const char *)d + 272, ==, "x86_64");
    for (size_t i = 402; i < 424; i++) {
        g_assert_cmpuint(d[i], ==, 0);            /* timestamp */
    }
    g_assert_cmpuint(p.status, ==, 1);
    g_assert_cmpuint(p.block_size, ==, PS);
    g_assert_cmpuint(p.nr_cpus, ==, 2);
    for (size_t off = 444; off < 460; off += 4) {
        g_assert_cmpuint(le32(d + off), ==, 0);
    }
    g_assert_cmpuint(p.note_size, ==, g->notes->len);
    g_assert_cmpuint(p.offset_note, ==, PS + 104);
    g_assert_cmpuint(p.sub_hdr_size, ==, (104 + g->notes->len + PS - 1) / PS);
    g_assert_cmpmem(d + p.offset_note, p.note_size, g->notes->data, g->notes->len);
    g_assert_cmpuint(p.phys_base, ==, 0x2000000);
    /* max_mapnr: the end of the last block, 4G + 256K. */
    g_assert_cmpuint(p.max_mapnr, ==, (0x100000000ull + 0x40000) / PS);
    g_assert_cmpuint(p.bitmap_blocks, ==, 2 * ((p.max_mapnr / 8 + PS - 1) / PS));
    vmci = p.offset_note + p.note_size - g->guest_note_size + 12 + 12;
    g_assert_cmpuint(p.offset_vmcoreinfo, ==, vmci);
    g_assert_cmpuint(p.size_vmcoreinfo, ==, strlen(vmcoreinfo_text));
    g_assert_cmpmem(d + vmci, p.size_vmcoreinfo, vmcoreinfo_text,
                    strlen(vmcoreinfo_text));
    /* Both bitmaps equal; the first data is the shared zero page. */
    g_assert_cmpmem(d + p.bitmap_off, p.len_bitmap, d + p.bitmap_off + p.len_bitmap,
                    p.len_bitmap);
    {
        uint64_t npages = (640 * 1024 + 0x200000 + 0x40000) / PS;
        uint64_t data0 = p.desc_off + 24 * npages;

        g_assert_cmpuint(le64(d + p.desc_off), !=, 0);
        for (uint64_t i = 0; i < PS; i++) {
            g_assert_cmpuint(d[data0 + i], ==, 0);
        }
    }
    check_contents(&p, g);
    kdump_test_guest_free(g);
}

static void test_header_32(void)
{
    g_autoptr(GBytes) f = NULL;
    KdumpTestGuest *g = small_guest();
    const uint8_t *d, *sh;
    size_t len;

    g->d_class = ELFCLASS32;
    f = write_dump(g, DUMP_DH_COMPRESSED_ZLIB, true, 1, "hdr32.kdump");
    d = g_bytes_get_data(f, &len);
    sh = d + PS;
    g_assert_cmpmem(d, 8, "KDUMP   ", 8);
    g_assert_cmpstr((const char *)d + 272, ==, "x86_64");
    g_assert_cmpuint(le32(d + 412), ==, 1);                 /* status */
    g_assert_cmpuint(le32(d + 416), ==, PS);                /* block_size */
    g_assert_cmpuint(le32(d + 448), ==, 2);                 /* nr_cpus */
    for (size_t i = 452; i < PS; i++) {
        g_assert_cmpuint(d[i], ==, 0);
    }
    g_assert_cmpuint(le32(sh), ==, 0x2000000);              /* phys_base */
    g_assert_cmpuint(le32(sh + 4), ==, 1);                  /* dump_level */
    g_assert_cmpuint(le64(sh + 32), ==, PS + 80);           /* offset_note */
    g_assert_cmpuint(le32(sh + 40), ==, g->notes->len);
    g_assert_cmpuint(le32(sh + 28), ==, strlen(vmcoreinfo_text));
    g_assert_cmpuint(le64(sh + 20), ==,
                     PS + 80 + g->notes->len - g->guest_note_size + 24);
    g_assert_cmpuint(le64(sh + 72), ==, (0x100000000ull + 0x40000) / PS);
    g_assert_cmpmem(d + PS + 80, g->notes->len, g->notes->data, g->notes->len);
    kdump_test_guest_free(g);
}

/*
 * QEMU 7.2's algorithm, written out as plainly as possible: one page at a
 * time, compress2() for zlib, and the two 16 KiB caches. Returns the
 * flattened file the pipeline must reproduce byte for byte.
 */
typedef struct Model {
    GByteArray *out;
    uint8_t desc[16384], data[16384];
    size_t desc_used, data_used;
    uint64_t desc_off, data_off;
} Model;

static void model_record(Model *m, uint64_t off, const void *buf, size_t len)
{
    uint8_t hdr[16];
    uint64_t be_off = GUINT64_TO_BE(off), be_len = GUINT64_TO_BE(len);

    if (!len) {
        return;
    }
    memcpy(hdr, &be_off, 8);
    memcpy(hdr + 8, &be_len, 8);
    g_byte_array_append(m->out, hdr, 16);
    g_byte_array_append(m->out, buf, len);
}

static void model_put(Model *m, bool data, const void *buf, size_t len)
{
    uint8_t *c = data ? m->data : m->desc;
    size_t *used = data ? &m->data_used : &m->desc_used;
    uint64_t *off = data ? &m->data_off : &m->desc_off;

    if (*used + len > 16384) {
        model_record(m, *off, c, *used);
        *off += *used;
        *used = 0;
    }
    memcpy(c + *used, buf, len);
    *used += len;
}

static size_t model_compress(uint32_t flag, const uint8_t *page, uint8_t *out)
{
    switch (flag) {
    case DUMP_DH_COMPRESSED_ZLIB: {
        uLongf n = compressBound(PS);

        return compress2(out, &n, page, PS, Z_BEST_SPEED) == Z_OK ? n : PS;
    }
#ifdef CONFIG_LZO
    case DUMP_DH_COMPRESSED_LZO: {
        static uint8_t wrk[LZO1X_1_MEM_COMPRESS];
        lzo_uint n = PS + PS / 16 + 64 + 3;

        return lzo1x_1_compress(page, PS, out, &n, wrk) == LZO_E_OK ? n : PS;
    }
#endif
#ifdef CONFIG_SNAPPY
    case DUMP_DH_COMPRESSED_SNAPPY: {
        size_t n = snappy_max_compressed_length(PS);

        return snappy_compress((const char *)page, PS, (char *)out, &n) == SNAPPY_OK
               ? n : PS;
    }
#endif
    default:
        g_assert_not_reached();
    }
}

static GByteArray *model_flat(KdumpTestGuest *g, uint32_t flag)
{
    Model *m = g_new0(Model, 1);
    GByteArray *res;
    uint8_t hdr[PS] = "makedumpfile";
    uint8_t dh[464] = "KDUMP   ", sh[104] = { 0 }, page[PS], cbuf[8192];
    uint64_t npages = 0, max_pfn = 0, len_bitmap, bitmap_off, window = 0;
    uint32_t sub_blocks;
    g_autofree uint8_t *bm = g_malloc0(PS);
    uint64_t zero_desc[3];
    static const uint8_t zero[PS];

#define PUT32(b, o, v) \
    do { uint32_t v_ = GUINT32_TO_LE(v); memcpy((b) + (o), &v_, 4); } while (0)
#define PUT64(b, o, v) \
    do { uint64_t v_ = GUINT64_TO_LE(v); memcpy((b) + (o), &v_, 8); } while (0)
    m->out = g_byte_array_new();
    hdr[23] = 1;
    hdr[31] = 1;
    g_byte_array_append(m->out, hdr, PS);
    for (size_t i = 0; i < g->blocks.num; i++) {
        const DumpGuestBlock *b = &g->blocks.blocks[i];

        npages += (b->target_end - b->target_start) / PS;
        max_pfn = b->target_end / PS;
    }
    len_bitmap = ((max_pfn + 7) / 8 + PS - 1) / PS * PS;
    sub_blocks = (104 + g->notes->len + PS - 1) / PS;
    bitmap_off = (1 + sub_blocks) * PS;
    PUT32(dh, 8, 6);
    memcpy(dh + 272, "x86_64", 6);
    PUT32(dh, 424, flag);
    PUT32(dh, 428, PS);
    PUT32(dh, 432, sub_blocks);
    PUT32(dh, 436, 2 * len_bitmap / PS);
    PUT32(dh, 440, max_pfn);
    PUT32(dh, 460, g->nr_cpus);
    PUT64(sh, 0, g->phys_base);
    PUT32(sh, 8, 1);
    PUT64(sh, 32, PS + 104 + g->notes->len - g->guest_note_size + 24);
    PUT64(sh, 40, strlen(vmcoreinfo_text));
    PUT64(sh, 48, PS + 104);
    PUT64(sh, 56, g->notes->len);
    PUT64(sh, 96, max_pfn);
    model_record(m, 0, dh, sizeof(dh));
    model_record(m, PS, sh, sizeof(sh));
    model_record(m, PS + 104, g->notes->data, g->notes->len);
    for (size_t i = 0; i < g->blocks.num; i++) {
        for (uint64_t a = g->blocks.blocks[i].target_start;
             a < g->blocks.blocks[i].target_end; a += PS) {
            uint64_t pfn = a / PS;

            for (; window < pfn / (8 * PS); window++) {
                model_record(m, bitmap_off + window * PS, bm, PS);
                model_record(m, bitmap_off + len_bitmap + window * PS, bm, PS);
                memset(bm, 0, PS);
            }
            bm[(pfn % (8 * PS)) / 8] |= 1 << (pfn % 8);
        }
    }
    model_record(m, bitmap_off + window * PS, bm, PS);
    model_record(m, bitmap_off + len_bitmap + window * PS, bm, PS);
    m->desc_off = bitmap_off + 2 * len_bitmap;
    m->data_off = m->desc_off + 24 * npages;
    zero_desc[0] = GUINT64_TO_LE(m->data_off);
    zero_desc[1] = GUINT64_TO_LE(PS);
    zero_desc[2] = 0;
    model_put(m, true, zero, PS);
    {
        uint64_t data_pos = m->data_off + PS;

        for (size_t i = 0; i < g->blocks.num; i++) {
            const DumpGuestBlock *b = &g->blocks.blocks[i];

            for (uint64_t a = b->target_start; a < b->target_end; a += PS) {
                uint64_t d[3] = { 0 };
                size_t n;

                memcpy(page, b->host_addr + (a - b->target_start), PS);
                if (!memcmp(page, zero, PS)) {
                    model_put(m, false, zero_desc, 24);
                    continue;
                }
                n = model_compress(flag, page, cbuf);
                if (n < PS) {
                    model_put(m, true, cbuf, n);
                    d[1] = GUINT64_TO_LE(((uint64_t)flag << 32) | n);
                } else {
                    model_put(m, true, page, PS);
                    n = PS;
                    d[1] = GUINT64_TO_LE(PS);
                }
                d[0] = GUINT64_TO_LE(data_pos);
                data_pos += n;
                model_put(m, false, d, 24);
            }
        }
    }
    model_record(m, m->desc_off, m->desc, m->desc_used);
    model_record(m, m->data_off, m->data, m->data_used);
    memset(hdr, 0xff, 16);
    g_byte_array_append(m->out, hdr, 16);
#undef PUT32
#undef PUT64
    res = m->out;
    g_free(m);
    return res;
}

static void test_chunk_sequence(gconstpointer opaque)
{
    uint32_t flag = GPOINTER_TO_UINT(opaque);
    KdumpTestGuest *g = small_guest();
    g_autoptr(GByteArray) want = NULL;
    g_autoptr(GBytes) got = NULL;
    g_autoptr(GArray) recs = NULL;
    const uint8_t *d;
    size_t len;

    if (!dump_codec_available(flag)) {
        g_test_skip("codec not built");
        kdump_test_guest_free(g);
        return;
    }
    want = model_flat(g, flag);
    got = write_dump(g, flag, false, 3, "chunks.kdump");
    d = g_bytes_get_data(got, &len);
    recs = kdump_test_flat_records(d, len);
    g_assert_nonnull(recs);
    /* disk_dump_header, sub header, notes; then nothing above QEMU's 16 KiB */
    g_assert_cmpuint(g_array_index(recs, uint64_t, 0), ==, 0);
    g_assert_cmpuint(g_array_index(recs, uint64_t, 1), ==, 464);
    g_assert_cmpuint(g_array_index(recs, uint64_t, 2), ==, PS);
    g_assert_cmpuint(g_array_index(recs, uint64_t, 3), ==, 104);
    g_assert_cmpuint(g_array_index(recs, uint64_t, 4), ==, PS + 104);
    g_assert_cmpuint(g_array_index(recs, uint64_t, 5), ==, g->notes->len);
    for (guint i = 3; i < recs->len; i++) {
        g_assert_cmpuint(g_array_index(recs, uint64_t, 2 * i + 1), <=, 16384);
    }
    g_assert_cmpuint(len, ==, want->len);
    g_assert_cmpmem(d, len, want->data, want->len);
    kdump_test_guest_free(g);
}

static void test_threads_identical(gconstpointer opaque)
{
    uint32_t flag = GPOINTER_TO_UINT(opaque);
    static const int threads[] = { 1, 2, 4 };
    KdumpTestGuest *g;

    if (!dump_codec_available(flag)) {
        g_test_skip("codec not built");
        return;
    }
    g = small_guest();
    for (int raw = 0; raw < 2; raw++) {
        g_autoptr(GBytes) first = NULL;

        for (size_t i = 0; i < G_N_ELEMENTS(threads); i++) {
            g_autoptr(GBytes) f = write_dump(g, flag, raw, threads[i], "thr.kdump");

            if (!first) {
                first = g_bytes_ref(f);
            } else {
                g_assert_true(g_bytes_equal(first, f));
            }
        }
        if (raw) {
            Parsed p;
            size_t len;
            const uint8_t *d = g_bytes_get_data(first, &len);

            parse64(&p, d, len);
            check_contents(&p, g);
        }
    }
    kdump_test_guest_free(g);
}

/* The raw file is the flattened one reassembled, byte for byte. */
static void test_raw_equals_flat(gconstpointer opaque)
{
    uint32_t flag = GPOINTER_TO_UINT(opaque);
    KdumpTestGuest *g;
    g_autoptr(GBytes) flat = NULL, raw = NULL;
    g_autoptr(GByteArray) re = NULL;
    const uint8_t *d;
    size_t len;

    if (!dump_codec_available(flag)) {
        g_test_skip("codec not built");
        return;
    }
    g = small_guest();
    flat = write_dump(g, flag, false, 2, "flat.kdump");
    raw = write_dump(g, flag, true, 2, "raw.kdump");
    d = g_bytes_get_data(flat, &len);
    re = kdump_test_reassemble(d, len);
    g_assert_nonnull(re);
    d = g_bytes_get_data(raw, &len);
    g_assert_cmpmem(re->data, re->len, d, len);
    kdump_test_guest_free(g);
}

/* Zero pages share one descriptor; random pages are stored as they are. */
static void test_zero_and_raw_pages(void)
{
    KdumpTestGuest *g = kdump_test_guest_new();
    uint8_t *m = kdump_test_guest_add_block(g, 0, 8 * PS);
    g_autoptr(GBytes) f = NULL;
    uint32_t st = 12345;
    Parsed p;
    const uint8_t *d, *pd;
    size_t len;
    uint64_t data0;

    /* pages: 0 zero, 1 random, 2 text, 3 zero, 4 random, 5..7 zero */
    for (int pg = 1; pg <= 4; pg += 3) {
        for (size_t i = 0; i < PS; i++) {
            st = st * 1103515245 + 12345;
            m[pg * PS + i] = st >> 16;
        }
    }
    for (size_t i = 0; i < PS; i++) {
        m[2 * PS + i] = "guestdump "[i % 10];
    }
    kdump_test_guest_add_note(g, "CORE", NT_PRSTATUS, m, 336, false);
    f = write_dump(g, DUMP_DH_COMPRESSED_ZLIB, true, 2, "zr.kdump");
    d = g_bytes_get_data(f, &len);
    parse64(&p, d, len);
    g_assert_cmpuint(p.max_mapnr, ==, 8);
    g_assert_cmpuint(p.bitmap_blocks, ==, 2);
    g_assert_cmpuint(d[p.bitmap_off], ==, 0xff);
    g_assert_cmpuint(p.offset_vmcoreinfo, ==, 0);
    pd = d + p.desc_off;
    data0 = p.desc_off + 8 * 24;
    for (int pg = 0; pg < 8; pg++) {
        const uint8_t *e = pd + pg * 24;

        if (pg == 1 || pg == 4) {
            g_assert_cmpuint(le32(e + 8), ==, PS);
            g_assert_cmpuint(le32(e + 12), ==, 0);
            g_assert_cmpmem(d + le64(e), PS, m + pg * PS, PS);
        } else if (pg == 2) {
            g_assert_cmpuint(le32(e + 12), ==, 1);
            g_assert_cmpuint(le32(e + 8), <, 100);
            /* data in page order, right after the zero page and page 1 */
            g_assert_cmpuint(le64(e), ==, data0 + 2 * PS);
        } else {
            g_assert_cmpuint(le64(e), ==, data0);
            g_assert_cmpuint(le32(e + 8), ==, PS);
            g_assert_cmpuint(le32(e + 12), ==, 0);
        }
    }
    /* zero page data, page 1, page 2 compressed, page 4: the file ends there */
    g_assert_cmpuint(len, ==, data0 + PS + PS + le32(pd + 2 * 24 + 8) + PS);
    check_contents(&p, g);
    kdump_test_guest_free(g);
}

/*
 * Blocks that start or end mid-page: each such page is zero-filled outside
 * the block; two blocks sharing a page are merged into one page with one
 * descriptor (7.2), leaving QEMU's unused slot at the end of the table.
 */
static void test_mid_page_blocks(void)
{
    KdumpTestGuest *g = kdump_test_guest_new();
    g_autoptr(GBytes) f = NULL;
    uint8_t *a, *b, *c, *e;
    Parsed p;
    const uint8_t *d;
    size_t len;
    uint64_t slots, used;

    a = kdump_test_guest_add_block(g, 0, 2 * PS + 0x800);          /* ends mid pfn 2 */
    b = kdump_test_guest_add_block(g, 2 * PS + 0xc00, 0x200);      /* inside pfn 2 */
    c = kdump_test_guest_add_block(g, 5 * PS + 0x80, 2 * PS);      /* pfn 5..7 */
    e = kdump_test_guest_add_block(g, 9 * PS, 0x100);              /* last, partial */
    memset(a, 0x11, 2 * PS + 0x800);
    memset(b, 0x22, 0x200);
    kdump_test_fill_mix(c, 2 * PS, 0x80, 9);
    memset(e, 0x33, 0x100);
    f = write_dump(g, DUMP_DH_COMPRESSED_ZLIB, true, 2, "mid.kdump");
    d = g_bytes_get_data(f, &len);
    parse64(&p, d, len);
    /* The partial last page counts (QEMU's floor would leave it out). */
    g_assert_cmpuint(p.max_mapnr, ==, 10);
    /* bits: 0,1,2 5,6,7 9 */
    g_assert_cmpuint(d[p.bitmap_off], ==, 0xe7);
    g_assert_cmpuint(d[p.bitmap_off + 1], ==, 0x02);
    check_contents(&p, g);
    /* pfn 2 counted twice in the bitmap pass: 8 slots, 7 descriptors. */
    slots = 8;
    used = 7;
    {
        uint64_t data0 = p.desc_off + slots * 24;

        /* pfn 0's data follows the shared zero page */
        g_assert_cmpuint(le64(d + p.desc_off), ==, data0 + PS);
        for (uint64_t i = used * 24; i < slots * 24; i++) {
            g_assert_cmpuint(d[p.desc_off + i], ==, 0);
        }
    }
    kdump_test_guest_free(g);
}

static void put_uts(uint8_t *p, const char *release)
{
    static const char *const f[6] = { "Linux", "guest1", NULL, "#1 SMP PREEMPT",
                                      "x86_64", "(none)" };

    memset(p, 0, 6 * 65);
    for (int i = 0; i < 6; i++) {
        strcpy((char *)p + i * 65, f[i] ? f[i] : release);
    }
}

/*
 * With a Linux VMCOREINFO, utsname comes from the guest's init_uts_ns
 * (readers need sysname/release/version to take it); a guest whose
 * init_uts_ns does not name VMCOREINFO's release gets QEMU's header.
 */
static void test_utsname_from_guest(void)
{
    static const char text[] = "OSRELEASE=6.1.0-test\n"
                               "SYMBOL(init_uts_ns)=ffffffff81000000\n"
                               "NUMBER(phys_base)=33554432\n";
    static const struct {
        unsigned off;
        const char *release;
        bool taken;
    } cases[] = {
        { 0, "6.1.0-test", true },
        { 4, "6.1.0-test", true },          /* kref first: kernels before 5.11 */
        { 0, "6.1.0-other", false },
        { 8, "6.1.0-test", false },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        KdumpTestGuest *g = kdump_test_guest_new();
        uint8_t *hi;
        g_autoptr(GBytes) f = NULL;
        const uint8_t *d;

        kdump_test_guest_add_note(g, "VMCOREINFO", 0, text, strlen(text), true);
        g->phys_base = 0x2000000;
        kdump_test_guest_add_block(g, 0, 0x100000);
        hi = kdump_test_guest_add_block(g, 0x3000000, 0x10000);
        put_uts(hi + cases[i].off, cases[i].release);
        f = write_dump(g, DUMP_DH_COMPRESSED_ZLIB, true, 1, "uts.kdump");
        d = g_bytes_get_data(f, NULL);
        g_assert_cmpstr((const char *)d + 272, ==, "x86_64");
        if (cases[i].taken) {
            g_assert_cmpstr((const char *)d + 12, ==, "Linux");
            g_assert_cmpstr((const char *)d + 12 + 65, ==, "guest1");
            g_assert_cmpstr((const char *)d + 12 + 130, ==, "6.1.0-test");
            g_assert_cmpstr((const char *)d + 12 + 195, ==, "#1 SMP PREEMPT");
            g_assert_cmpstr((const char *)d + 12 + 325, ==, "(none)");
        } else {
            for (size_t j = 12; j < 272; j++) {
                g_assert_cmpuint(d[j], ==, 0);
            }
        }
        kdump_test_guest_free(g);
    }
}

static void test_empty_guest(void)
{
    KdumpTestGuest *g = kdump_test_guest_new();
    g_autoptr(GBytes) f = write_dump(g, DUMP_DH_COMPRESSED_ZLIB, true, 2, "e.kdump");
    Parsed p;
    size_t len;
    const uint8_t *d = g_bytes_get_data(f, &len);

    parse64(&p, d, len);
    g_assert_cmpuint(p.max_mapnr, ==, 0);
    g_assert_cmpuint(p.bitmap_blocks, ==, 0);
    /* only the zero page follows the (empty) descriptor table */
    g_assert_cmpuint(len, ==, p.desc_off + PS);
    kdump_test_guest_free(g);
}

/* ENOSPC and EPIPE fail the dump with QEMU's message and nothing else. */
static void test_write_errors(void)
{
    KdumpTestGuest *g = small_guest();
    g_autofree char *msg = NULL;
    int fds[2];
    int fd;

    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        g_assert_false(kdump_test_write_fd(g, DUMP_DH_COMPRESSED_ZLIB, true, 2, fd,
                                           true, &msg));
        g_assert_cmpstr(msg, ==, "dump: failed to write disk dump header");
        g_clear_pointer(&msg, g_free);
    }
    g_assert_cmpint(pipe(fds), ==, 0);
    close(fds[0]);
    g_assert_false(kdump_test_write_fd(g, DUMP_DH_COMPRESSED_ZLIB, false, 2, fds[1],
                                       false, &msg));
    g_assert_cmpstr(msg, ==, "dump: failed to write start flat header");
    g_clear_pointer(&msg, g_free);
    kdump_test_guest_free(g);
}

/*
 * The bitmaps grow with the highest RAM address: RAM at 2^52 - 4 KiB (what
 * a restored vmcore can hold) would be 256 GiB of bitmap for 8 KiB of RAM.
 * Refused beyond max(64 MiB, the RAM); a sparse guest below that works.
 */
static void test_bitmap_bound(void)
{
    KdumpTestGuest *g = kdump_test_guest_new();
    g_autofree char *msg = NULL;
    int fd = open("/dev/null", O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    memset(kdump_test_guest_add_block(g, 0, PS), 1, PS);
    memset(kdump_test_guest_add_block(g, (1ULL << 52) - PS, PS), 2, PS);
    g_assert_false(kdump_test_write_fd(g, DUMP_DH_COMPRESSED_ZLIB, false, 1, fd,
                                       false, &msg));
    g_assert_cmpstr(msg, ==, "dump: guest RAM ends at 0x10000000000000: kdump "
                    "bitmaps of 262144 MiB for 8 KiB of RAM are refused; use "
                    "format elf");
    kdump_test_guest_free(g);

    /* 1 page at 256 GiB: 16 MiB of bitmaps, under the 64 MiB floor */
    g = kdump_test_guest_new();
    memset(kdump_test_guest_add_block(g, 256ULL << 30, PS), 3, PS);
    fd = open("/dev/null", O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_clear_pointer(&msg, g_free);
    if (!kdump_test_write_fd(g, DUMP_DH_COMPRESSED_ZLIB, false, 1, fd, false, &msg)) {
        g_error("%s", msg);
    }
    kdump_test_guest_free(g);
}

/*
 * EPIPE in the middle of the page data: a reader that stops after 64 KiB.
 * The writer must stop with the data message and join its workers.
 */
static void test_pipe_closed_mid_dump(void)
{
    KdumpTestGuest *g = kdump_test_guest_new();
    g_autofree char *msg = NULL;
    int fds[2];
    GPid pid;

    kdump_test_fill_mix(kdump_test_guest_add_block(g, 0, 64 << 20), 64 << 20, PS, 5);
    g_assert_cmpint(pipe(fds), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        static char buf[65536];
        size_t got = 0;

        close(fds[1]);
        while (got < sizeof(buf)) {
            ssize_t n = read(fds[0], buf, sizeof(buf) - got);

            if (n <= 0) {
                break;
            }
            got += n;
        }
        _exit(0);
    }
    close(fds[0]);
    g_assert_false(kdump_test_write_fd(g, DUMP_DH_COMPRESSED_LZO, false, 2, fds[1],
                                       false, &msg));
    g_assert_true(g_str_has_prefix(msg, "dump: failed to "));
    waitpid(pid, NULL, 0);
    kdump_test_guest_free(g);
}

/*
 * A full disk in the middle of the page data (a file size limit stands in
 * for it, so no root is needed): the dump fails with the data or descriptor
 * message, for raw and flattened files, whatever the thread count.
 */
static void test_disk_full_mid_dump(void)
{
    KdumpTestGuest *g = kdump_test_guest_new();
    g_autofree char *path = tmp_path("full.kdump");
    struct rlimit old, lim;

    kdump_test_fill_mix(kdump_test_guest_add_block(g, 0, 32 << 20), 32 << 20, PS, 6);
    signal(SIGXFSZ, SIG_IGN);
    g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &old), ==, 0);
    lim = old;
    lim.rlim_cur = 1 << 20;
    for (int raw = 0; raw < 2; raw++) {
        for (int threads = 1; threads <= 4; threads *= 2) {
            g_autofree char *msg = NULL;
            bool ok;

            g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &lim), ==, 0);
            ok = kdump_test_write(g, DUMP_DH_COMPRESSED_LZO, raw, threads, path, &msg);
            g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &old), ==, 0);
            g_assert_false(ok);
            g_assert_true(!strcmp(msg, "dump: failed to write page data") ||
                          !strcmp(msg, "dump: failed to write page desc"));
        }
    }
    kdump_test_guest_free(g);
}

/* quit during a dump: the writer stops at the next batch with QEMU-style text. */
static void test_cancel(void)
{
    KdumpTestGuest *g = small_guest();
    g_autofree char *path = tmp_path("cancel.kdump");
    g_autofree char *msg = NULL;

    kdump_test_cancel = true;
    g_assert_false(kdump_test_write(g, DUMP_DH_COMPRESSED_ZLIB, false, 2, path, &msg));
    kdump_test_cancel = false;
    g_assert_cmpstr(msg, ==, "dump: cancelled");
    kdump_test_guest_free(g);
}

/* A flattened dump into a pipe (fd: protocol) is the file's bytes. */
static void test_pipe_output(gconstpointer opaque)
{
    uint32_t flag = GPOINTER_TO_UINT(opaque);
    g_autofree char *piped = tmp_path("piped.kdump");
    g_autofree char *msg = NULL;
    g_autoptr(GBytes) file = NULL, fromp = NULL;
    KdumpTestGuest *g;
    int fds[2];
    GPid pid;
    int status;

    if (!dump_codec_available(flag)) {
        g_test_skip("codec not built");
        return;
    }
    g = small_guest();
    file = write_dump(g, flag, false, 2, "file.kdump");
    g_assert_cmpint(pipe(fds), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        int out = open(piped, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[65536];
        ssize_t n;

        close(fds[1]);
        while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
            if (write(out, buf, n) != n) {
                _exit(1);
            }
        }
        _exit(close(out) == 0 ? 0 : 1);
    }
    close(fds[0]);
    g_assert_true(kdump_test_write_fd(g, flag, false, 2, fds[1], false, &msg));
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fromp = read_file(piped);
    g_assert_true(g_bytes_equal(file, fromp));
    kdump_test_guest_free(g);
}

static void test_codec_zlib_matches_compress2(void)
{
    g_autofree uint8_t *pages = g_malloc(64 * PS);
    uint8_t a[8192], b[8192];
    Error *err = NULL;
    DumpCodec *c = dump_codec_new(DUMP_DH_COMPRESSED_ZLIB, PS, &err);

    g_assert_nonnull(c);
    kdump_test_fill_mix(pages, 64 * PS, PS, 77);
    for (int i = 0; i < 64; i++) {
        size_t n = dump_codec_compress(c, pages + i * PS, a);
        uLongf m = compressBound(PS);

        g_assert_cmpint(compress2(b, &m, pages + i * PS, PS, Z_BEST_SPEED), ==, Z_OK);
        if (m < PS) {
            g_assert_cmpmem(a, n, b, m);
        } else {
            g_assert_cmpuint(n, ==, 0);
        }
    }
    dump_codec_free(c);
}

/*
 * The zlib shortcut may only ever call "raw" a page that compress2() at
 * level 1 cannot shrink below 4096 bytes: random pages, and random pages
 * skewed towards a few values so their entropy crosses the threshold.
 */
static void test_zlib_shortcut(void)
{
    Error *err = NULL;
    DumpCodec *c = dump_codec_new(DUMP_DH_COMPRESSED_ZLIB, PS, &err);
    g_autofree uint8_t *page = g_malloc(PS);
    uint8_t out[8192];
    uint32_t st = 99;
    int taken = 0, tried = 0;

    g_assert_nonnull(c);
    for (int skew = 0; skew <= 12; skew += 2) {
        for (int n = 0; n < 150; n++) {
            uLongf len = sizeof(out);

            for (size_t i = 0; i < PS; i++) {
                st ^= st << 13;
                st ^= st >> 17;
                st ^= st << 5;
                page[i] = (st % 100 < (uint32_t)skew) ? (st >> 8) % 16 : st >> 24;
            }
            tried++;
            if (!dump_zlib_cannot_shrink(c, page)) {
                continue;
            }
            taken++;
            g_assert_cmpint(compress2(out, &len, page, PS, Z_BEST_SPEED), ==, Z_OK);
            g_assert_cmpuint(len, >=, PS);
            g_assert_cmpuint(dump_codec_compress(c, page, out), ==, 0);
        }
    }
    /* It must have been exercised: about half of all random pages qualify. */
    g_assert_cmpint(taken, >, tried / 10);
    memset(page, 0, PS);
    g_assert_false(dump_zlib_cannot_shrink(c, page));
    for (size_t i = 0; i < PS; i++) {
        page[i] = "static int dump(void);\n"[i % 24];
    }
    g_assert_false(dump_zlib_cannot_shrink(c, page));
    /* A repeated three-byte run in an otherwise qualifying page vetoes it. */
    do {
        for (size_t i = 0; i < PS; i++) {
            st ^= st << 13;
            st ^= st >> 17;
            st ^= st << 5;
            page[i] = st >> 24;
        }
    } while (!dump_zlib_cannot_shrink(c, page));
    memcpy(page + 2000, page + 100, 3);
    g_assert_false(dump_zlib_cannot_shrink(c, page));
    dump_codec_free(c);
}

static void test_page_is_zero(void)
{
    uint8_t page[PS + 8] = { 0 };

    g_assert_true(dump_page_is_zero(page, PS));
    for (size_t i = 0; i < PS; i += 509) {
        page[i] = 1;
        g_assert_false(dump_page_is_zero(page, PS));
        page[i] = 0;
    }
    page[PS - 1] = 0x80;
    g_assert_false(dump_page_is_zero(page, PS));
    g_assert_true(dump_page_is_zero(page + 1, 7));
    g_assert_false(dump_page_is_zero(page + PS - 3, 3));
}

/* ---------------------------------------------------------------------- */
/* Independent readers                                                      */
/* ---------------------------------------------------------------------- */

static const char libkdumpfile_script[] =
    "import sys, hashlib, kdumpfile\n"
    "k = kdumpfile.kdumpfile(sys.argv[1])\n"
    "for spec in sys.argv[2:]:\n"
    "    a, n = (int(x, 0) for x in spec.split(':'))\n"
    "    h = hashlib.sha256()\n"
    "    while n:\n"
    "        c = min(n, 1 << 20)\n"
    "        h.update(k.read(kdumpfile.KDUMP_MACHPHYSADDR, a, c))\n"
    "        a += c; n -= c\n"
    "    print(h.hexdigest())\n";

static void test_libkdumpfile(gconstpointer opaque)
{
    uint32_t flag = GPOINTER_TO_UINT(opaque);
    g_autofree char *path = tmp_path("lkdf.kdump");
    g_autofree char *msg = NULL, *out = NULL, *err = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GString) want = g_string_new(NULL);
    KdumpTestGuest *g;
    int status;

    if (!dump_codec_available(flag)) {
        g_test_skip("codec not built");
        return;
    }
    if (!g_file_test("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE) ||
        !g_spawn_command_line_sync("/usr/bin/python3 -c 'import kdumpfile'", NULL,
                                   NULL, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_test_skip("python3-libkdumpfile (Debian's /usr/bin/python3) is not installed");
        return;
    }
    g = small_guest();
    g_assert_true(kdump_test_write(g, flag, true, 2, path, &msg));
    g_ptr_array_add(argv, g_strdup("/usr/bin/python3"));
    g_ptr_array_add(argv, g_strdup("-c"));
    g_ptr_array_add(argv, g_strdup(libkdumpfile_script));
    g_ptr_array_add(argv, g_strdup(path));
    for (size_t i = 0; i < g->blocks.num; i++) {
        const DumpGuestBlock *b = &g->blocks.blocks[i];
        uint64_t n = b->target_end - b->target_start;

        g_ptr_array_add(argv, g_strdup_printf("0x%" G_GINT64_MODIFIER "x:%"
                                              G_GUINT64_FORMAT, b->target_start, n));
        g_autofree char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                                            b->host_addr, n);
        g_string_append_printf(want, "%s\n", sum);
    }
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, 0, NULL, NULL, &out,
                               &err, &status, NULL));
    if (!g_spawn_check_wait_status(status, NULL)) {
        if (strstr(err, "Unsupported compression")) {
            g_test_skip("this libkdumpfile was built without the codec");
            kdump_test_guest_free(g);
            return;
        }
        g_error("libkdumpfile failed: %s", err);
    }
    g_assert_cmpstr(out, ==, want->str);
    kdump_test_guest_free(g);
}

static void test_makedumpfile_R(gconstpointer opaque)
{
    uint32_t flag = GPOINTER_TO_UINT(opaque);
    g_autofree char *mdf = kdump_test_find_program("makedumpfile");
    g_autofree char *flat = tmp_path("mdf.flat"), *raw = tmp_path("mdf.raw");
    g_autofree char *re = tmp_path("mdf.re"), *cmd = NULL, *msg = NULL;
    g_autoptr(GBytes) a = NULL, b = NULL;
    KdumpTestGuest *g;
    int status;

    if (!mdf) {
        g_test_skip("makedumpfile is not installed");
        return;
    }
    if (!dump_codec_available(flag)) {
        g_test_skip("codec not built");
        return;
    }
    g = small_guest();
    g_assert_true(kdump_test_write(g, flag, false, 2, flat, &msg));
    g_assert_true(kdump_test_write(g, flag, true, 2, raw, &msg));
    unlink(re);
    cmd = g_strdup_printf("sh -c '%s -R %s < %s >/dev/null 2>&1'", mdf, re, flat);
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    a = read_file(re);
    b = read_file(raw);
    g_assert_true(g_bytes_equal(a, b));
    kdump_test_guest_free(g);
}

static void add_per_codec(const char *name, GTestDataFunc fn)
{
    static const char *const names[] = { "zlib", "lzo", "snappy", "zstd" };

    for (size_t i = 0; i < G_N_ELEMENTS(all_flags); i++) {
        g_autofree char *path = g_strdup_printf("/kdump/%s/%s", name, names[i]);

        g_test_add_data_func(path, GUINT_TO_POINTER(all_flags[i]), fn);
    }
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    tmpdir = g_dir_make_tmp("test-kdump-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);

    g_test_add_func("/kdump/codec/page-is-zero", test_page_is_zero);
    g_test_add_func("/kdump/codec/zlib-shortcut", test_zlib_shortcut);
    g_test_add_func("/kdump/codec/zlib-matches-compress2",
                    test_codec_zlib_matches_compress2);
    g_test_add_func("/kdump/header/fields", test_header_fields);
    g_test_add_func("/kdump/header/class32", test_header_32);
    g_test_add_func("/kdump/header/utsname-from-guest", test_utsname_from_guest);
    g_test_add_func("/kdump/pages/zero-and-raw", test_zero_and_raw_pages);
    g_test_add_func("/kdump/pages/mid-page-blocks", test_mid_page_blocks);
    g_test_add_func("/kdump/pages/empty-guest", test_empty_guest);
    g_test_add_data_func("/kdump/chunks/zlib", GUINT_TO_POINTER(1), test_chunk_sequence);
    g_test_add_data_func("/kdump/chunks/lzo", GUINT_TO_POINTER(2), test_chunk_sequence);
    g_test_add_data_func("/kdump/chunks/snappy", GUINT_TO_POINTER(4),
                         test_chunk_sequence);
    add_per_codec("threads", test_threads_identical);
    add_per_codec("raw-equals-flat", test_raw_equals_flat);
    add_per_codec("libkdumpfile", test_libkdumpfile);
    add_per_codec("makedumpfile-R", test_makedumpfile_R);
    g_test_add_func("/kdump/errors/enospc-epipe", test_write_errors);
    g_test_add_func("/kdump/errors/bitmap-bound", test_bitmap_bound);
    g_test_add_func("/kdump/errors/pipe-closed-mid-dump", test_pipe_closed_mid_dump);
    g_test_add_func("/kdump/errors/disk-full-mid-dump", test_disk_full_mid_dump);
    g_test_add_func("/kdump/errors/cancel", test_cancel);
    add_per_codec("pipe", test_pipe_output);

    ret = g_test_run();
    {
        g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
        const char *name;

        while (dir && (name = g_dir_read_name(dir))) {
            g_autofree char *p = tmp_path(name);

            unlink(p);
        }
        rmdir(tmpdir);
    }
    return ret;
}
