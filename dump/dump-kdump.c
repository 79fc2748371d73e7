/* The kdump-compressed writer: makedumpfile's diskdump format as QEMU 7.2 writes it. */
#include <elf.h>
#include <glib.h>
#include <string.h>

#include "dump-compress.h"
#include "sysemu/dump-core.h"

#define KDUMP_SIGNATURE         "KDUMP   "
#define KDUMP_HEADER_VERSION    6
#define KDUMP_DUMP_LEVEL        1
#define KDUMP_UTS_LEN           65
/* 7.2's ELF_MACHINE_UNAME on qemu-system-x86_64, for 32-bit guests too. */
#define KDUMP_MACHINE           "x86_64"
/* QEMU's DataCache is four target pages; flattened records follow its flushes. */
#define KDUMP_CACHE_PAGES       4
/* A raw file has no records, so its writes can be as large as we like. */
#define KDUMP_RAW_CACHE_SIZE    (1u << 20)
#define KDUMP_BATCH_PAGES       512
/*
 * The two bitmaps are sized by the highest RAM address, not by the RAM: one
 * page at 2^52 - 4 KiB means 256 GiB of bitmap. They may be as large as the
 * RAM they describe, and always 64 MiB (RAM spanning up to 1 TiB of
 * addresses, whatever its amount), so the output stays within about twice
 * the guest's RAM.
 */
#define KDUMP_BITMAP_FLOOR      (64ULL << 20)

typedef struct __attribute__((packed)) KdumpUtsname {
    char sysname[KDUMP_UTS_LEN];
    char nodename[KDUMP_UTS_LEN];
    char release[KDUMP_UTS_LEN];
    char version[KDUMP_UTS_LEN];
    char machine[KDUMP_UTS_LEN];
    char domainname[KDUMP_UTS_LEN];
} KdumpUtsname;

/* makedumpfile's disk_dump_header as an x86_64 makedumpfile lays it out. */
typedef struct __attribute__((packed)) DiskDumpHeader64 {
    char signature[8];
    uint32_t header_version;
    KdumpUtsname utsname;
    uint8_t timestamp[22];          /* 6 bytes of padding, then struct timeval */
    uint32_t status;
    uint32_t block_size;
    uint32_t sub_hdr_size;
    uint32_t bitmap_blocks;
    uint32_t max_mapnr;
    uint32_t total_ram_blocks;
    uint32_t device_blocks;
    uint32_t written_blocks;
    uint32_t current_cpu;
    uint32_t nr_cpus;
} DiskDumpHeader64;

_Static_assert(sizeof(KdumpUtsname) == 390, "utsname");
_Static_assert(offsetof(DiskDumpHeader64, utsname) == 12, "dh64 utsname");
_Static_assert(offsetof(DiskDumpHeader64, utsname.machine) == 272, "dh64 machine");
_Static_assert(offsetof(DiskDumpHeader64, status) == 424, "dh64 status");
_Static_assert(offsetof(DiskDumpHeader64, max_mapnr) == 440, "dh64 max_mapnr");
_Static_assert(offsetof(DiskDumpHeader64, nr_cpus) == 460, "dh64 nr_cpus");
_Static_assert(sizeof(DiskDumpHeader64) == 464, "dh64 size");

/* The i386 layout: struct timeval is two 4-byte longs aligned to 4. */
typedef struct __attribute__((packed)) DiskDumpHeader32 {
    char signature[8];
    uint32_t header_version;
    KdumpUtsname utsname;
    uint8_t timestamp[10];
    uint32_t status;
    uint32_t block_size;
    uint32_t sub_hdr_size;
    uint32_t bitmap_blocks;
    uint32_t max_mapnr;
    uint32_t total_ram_blocks;
    uint32_t device_blocks;
    uint32_t written_blocks;
    uint32_t current_cpu;
    uint32_t nr_cpus;
} DiskDumpHeader32;

_Static_assert(offsetof(DiskDumpHeader32, status) == 412, "dh32 status");
_Static_assert(offsetof(DiskDumpHeader32, nr_cpus) == 448, "dh32 nr_cpus");
_Static_assert(sizeof(DiskDumpHeader32) == 452, "dh32 size");

typedef struct __attribute__((packed)) KdumpSubHeader64 {
    uint64_t phys_base;
    uint32_t dump_level;
    uint32_t split;
    uint64_t start_pfn;
    uint64_t end_pfn;
    uint64_t offset_vmcoreinfo;
    uint64_t size_vmcoreinfo;
    uint64_t offset_note;
    uint64_t note_size;
    uint64_t offset_eraseinfo;
    uint64_t size_eraseinfo;
    uint64_t start_pfn_64;
    uint64_t end_pfn_64;
    uint64_t max_mapnr_64;
} KdumpSubHeader64;

_Static_assert(offsetof(KdumpSubHeader64, offset_vmcoreinfo) == 32, "sh64 vmcoreinfo");
_Static_assert(offsetof(KdumpSubHeader64, offset_note) == 48, "sh64 note");
_Static_assert(offsetof(KdumpSubHeader64, max_mapnr_64) == 96, "sh64 max_mapnr_64");
_Static_assert(sizeof(KdumpSubHeader64) == 104, "sh64 size");

/* i386: unsigned long is 4 bytes, off_t 8 bytes aligned to 4. */
typedef struct __attribute__((packed)) KdumpSubHeader32 {
    uint32_t phys_base;
    uint32_t dump_level;
    uint32_t split;
    uint32_t start_pfn;
    uint32_t end_pfn;
    uint64_t offset_vmcoreinfo;
    uint32_t size_vmcoreinfo;
    uint64_t offset_note;
    uint32_t note_size;
    uint64_t offset_eraseinfo;
    uint32_t size_eraseinfo;
    uint64_t start_pfn_64;
    uint64_t end_pfn_64;
    uint64_t max_mapnr_64;
} KdumpSubHeader32;

_Static_assert(offsetof(KdumpSubHeader32, offset_vmcoreinfo) == 20, "sh32 vmcoreinfo");
_Static_assert(offsetof(KdumpSubHeader32, offset_note) == 32, "sh32 note");
_Static_assert(offsetof(KdumpSubHeader32, start_pfn_64) == 56, "sh32 start_pfn_64");
_Static_assert(offsetof(KdumpSubHeader32, max_mapnr_64) == 72, "sh32 max_mapnr_64");
_Static_assert(sizeof(KdumpSubHeader32) == 80, "sh32 size");

typedef struct __attribute__((packed)) KdumpPageDesc {
    uint64_t offset;
    uint32_t size;
    uint32_t flags;
    uint64_t page_flags;
} KdumpPageDesc;

_Static_assert(sizeof(KdumpPageDesc) == 24, "page_desc size");

/* A write buffer with its own running file offset (QEMU's DataCache). */
typedef struct KdumpCache {
    uint8_t *buf;
    size_t size;
    size_t used;
    uint64_t offset;
    /*
     * Raw files only: items may straddle writes, and each write ends on a
     * multiple of size, so the file gets large aligned writes. The bytes
     * are the same; only the flattened format must keep 7.2's chunking.
     */
    bool split;
} KdumpCache;

typedef struct KdumpWriter {
    DumpJob *job;
    const DumpPlan *s;            /* job->plan */
    bool big_endian;
    bool class64;
    uint32_t flag;
    size_t page_size;
    unsigned page_shift;

    uint64_t max_mapnr;
    uint64_t len_dump_bitmap;
    uint64_t num_dumpable;          /* descriptor slots: QEMU's bitmap-pass count */
    uint32_t sub_hdr_size;          /* in blocks */
    uint32_t bitmap_blocks;
    uint64_t offset_note;
    uint64_t offset_dump_bitmap;
    uint64_t offset_page;
    uint64_t offset_vmcoreinfo;
    uint64_t size_vmcoreinfo;

    /* Page pass. */
    KdumpCache desc_cache;
    KdumpCache data_cache;
    uint64_t offset_data;
    KdumpPageDesc zero_desc;
    /*
     * Zero pages share zero_desc (QEMU; makedumpfile with -d bit 1), or,
     * with a dump-level without bit 1, are each stored as makedumpfile
     * stores them then: zero_data, zero_len bytes (compressed unless
     * zero_len is the page size).
     */
    bool share_zero;
    uint8_t *zero_data;
    uint32_t zero_len;
    size_t block;                   /* data-pass iterator: current block */
    uint64_t addr;                  /* next guest-physical byte to take */

    /* dump-level: the pfns left out of the 2nd bitmap and the page pass. */
    DumpPageFilter *filter;
    uint32_t dump_level;            /* the sub-header's */
} KdumpWriter;

/* In the 2nd bitmap and the page pass: below max_mapnr and not left out. */
static bool kdump_pfn_kept(const KdumpWriter *k, uint64_t pfn)
{
    return pfn < k->max_mapnr && !dump_filter_excluded(k->filter, pfn);
}

static uint32_t dump32(const KdumpWriter *k, uint32_t v)
{
    return k->big_endian ? GUINT32_TO_BE(v) : GUINT32_TO_LE(v);
}

static uint64_t dump64(const KdumpWriter *k, uint64_t v)
{
    return k->big_endian ? GUINT64_TO_BE(v) : GUINT64_TO_LE(v);
}

static uint64_t div_round_up(uint64_t v, uint64_t d)
{
    return (v + d - 1) / d;
}

static uint64_t round_up(uint64_t v, uint64_t align)
{
    return div_round_up(v, align) * align;
}

/*
 * offset/size of the VMCOREINFO descriptor text when the guest note is
 * named "VMCOREINFO" (the guest note is always the last note).
 */
static void kdump_find_vmcoreinfo(KdumpWriter *k)
{
    const DumpPlan *s = k->s;
    const uint8_t *note = s->guest_note;
    uint32_t namesz, descsz;

    k->offset_vmcoreinfo = 0;
    k->size_vmcoreinfo = 0;
    if (!note || s->guest_note_size < 12) {
        return;
    }
    memcpy(&namesz, note, 4);
    memcpy(&descsz, note + 4, 4);
    namesz = dump32(k, namesz);
    descsz = dump32(k, descsz);
    if (namesz != sizeof("VMCOREINFO") ||
        12 + round_up(namesz, 4) > s->guest_note_size ||
        memcmp(note + 12, "VMCOREINFO", sizeof("VMCOREINFO")) != 0) {
        return;
    }
    k->offset_vmcoreinfo = k->offset_note + s->note_size - s->guest_note_size +
                           12 + round_up(namesz, 4);
    k->size_vmcoreinfo = descsz;
}

/* The value of "KEY=" in the VMCOREINFO text, or NULL. */
static char *vmcoreinfo_value(const char *text, const char *key)
{
    size_t klen = strlen(key);

    for (const char *line = text; line && *line; ) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);

        if (len > klen && !strncmp(line, key, klen)) {
            return g_strndup(line + klen, len - klen);
        }
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

/* len bytes of guest RAM at pa when one block holds them all. */
static const uint8_t *guest_ram(const DumpPlan *s, uint64_t pa, uint64_t len)
{
    for (size_t i = 0; i < s->guest_phys_blocks.num; i++) {
        const DumpGuestBlock *b = &s->guest_phys_blocks.blocks[i];

        if (pa >= b->target_start && pa < b->target_end &&
            len <= b->target_end - pa) {
            return b->host_addr + (pa - b->target_start);
        }
    }
    return NULL;
}

static bool uts_field_ok(const char *f)
{
    return memchr(f, '\0', KDUMP_UTS_LEN) != NULL;
}

/*
 * QEMU fills only utsname.machine, so libkdumpfile (and drgn on top of it)
 * cannot tell the architecture: it takes utsname only when sysname is
 * "Linux" and release, version and machine are set. A Linux guest's own
 * init_uts_ns holds exactly those strings; VMCOREINFO says where it is.
 * The copy is used only if it names the release VMCOREINFO names, so a
 * guest that lies gets QEMU's header, never bytes from elsewhere.
 */
static bool kdump_guest_utsname(KdumpWriter *k, KdumpUtsname *uts)
{
    const DumpPlan *s = k->s;
    g_autofree char *text = NULL, *release = NULL, *sym = NULL;
    uint32_t namesz, descsz;
    uint64_t va, pa;

    if (!k->size_vmcoreinfo || s->dump_info.d_machine != EM_X86_64) {
        return false;
    }
    memcpy(&namesz, s->guest_note, 4);
    memcpy(&descsz, s->guest_note + 4, 4);
    descsz = dump32(k, descsz);
    if (12 + round_up(dump32(k, namesz), 4) + (uint64_t)descsz > s->guest_note_size) {
        return false;
    }
    text = g_strndup((const char *)s->guest_note + 12 +
                     round_up(dump32(k, namesz), 4), descsz);
    release = vmcoreinfo_value(text, "OSRELEASE=");
    sym = vmcoreinfo_value(text, "SYMBOL(init_uts_ns)=");
    if (!release || !sym || strlen(release) >= KDUMP_UTS_LEN) {
        return false;
    }
    va = g_ascii_strtoull(sym, NULL, 16);
    /* __pa_symbol(): the kernel image mapping starts at __START_KERNEL_map. */
    if (va < 0xffffffff80000000ull) {
        return false;
    }
    pa = va - 0xffffffff80000000ull + s->dump_info.phys_base;
    /* struct uts_namespace starts with the name since 5.11, after a kref before. */
    for (unsigned off = 0; off <= 4; off += 4) {
        const KdumpUtsname *g = (const KdumpUtsname *)guest_ram(s, pa + off,
                                                                sizeof(*g));

        if (!g || !uts_field_ok(g->sysname) || !uts_field_ok(g->nodename) ||
            !uts_field_ok(g->release) || !uts_field_ok(g->version) ||
            !uts_field_ok(g->machine) || !uts_field_ok(g->domainname)) {
            continue;
        }
        if (strcmp(g->sysname, "Linux") || strcmp(g->release, release) ||
            !g->version[0] || !g->machine[0]) {
            continue;
        }
        strcpy(uts->sysname, g->sysname);
        strcpy(uts->nodename, g->nodename);
        strcpy(uts->release, g->release);
        strcpy(uts->version, g->version);
        strcpy(uts->machine, g->machine);
        strcpy(uts->domainname, g->domainname);
        return true;
    }
    return false;
}

static void kdump_fill_utsname(KdumpWriter *k, KdumpUtsname *uts)
{
    memset(uts, 0, sizeof(*uts));
    if (!kdump_guest_utsname(k, uts)) {
        memset(uts, 0, sizeof(*uts));
        strncpy(uts->machine, KDUMP_MACHINE, sizeof(uts->machine));
    }
}

static bool kdump_write_headers(KdumpWriter *k, Error **errp)
{
    const DumpPlan *s = k->s;
    union {
        DiskDumpHeader64 h64;
        DiskDumpHeader32 h32;
    } dh;
    union {
        KdumpSubHeader64 s64;
        KdumpSubHeader32 s32;
    } sh;
    uint32_t max_mapnr32 = MIN(k->max_mapnr, UINT32_MAX);
    size_t dh_size, sh_size;

    memset(&dh, 0, sizeof(dh));
    memset(&sh, 0, sizeof(sh));
#define FILL_DH(h)                                                       \
    do {                                                                 \
        memcpy((h).signature, KDUMP_SIGNATURE, 8);                       \
        (h).header_version = dump32(k, KDUMP_HEADER_VERSION);            \
        kdump_fill_utsname(k, &(h).utsname);                             \
        (h).status = dump32(k, k->flag);                                 \
        (h).block_size = dump32(k, k->page_size);                        \
        (h).sub_hdr_size = dump32(k, k->sub_hdr_size);                   \
        (h).bitmap_blocks = dump32(k, k->bitmap_blocks);                 \
        (h).max_mapnr = dump32(k, max_mapnr32);                          \
        (h).nr_cpus = dump32(k, s->nr_cpus);                             \
    } while (0)
    if (k->class64) {
        FILL_DH(dh.h64);
        dh_size = sizeof(dh.h64);
        sh.s64.phys_base = dump64(k, s->dump_info.phys_base);
        sh.s64.dump_level = dump32(k, k->dump_level);
        sh.s64.offset_vmcoreinfo = dump64(k, k->offset_vmcoreinfo);
        sh.s64.size_vmcoreinfo = dump64(k, k->size_vmcoreinfo);
        sh.s64.offset_note = dump64(k, k->offset_note);
        sh.s64.note_size = dump64(k, s->note_size);
        sh.s64.max_mapnr_64 = dump64(k, k->max_mapnr);
        sh_size = sizeof(sh.s64);
    } else {
        FILL_DH(dh.h32);
        dh_size = sizeof(dh.h32);
        sh.s32.phys_base = dump32(k, s->dump_info.phys_base);
        sh.s32.dump_level = dump32(k, k->dump_level);
        sh.s32.offset_vmcoreinfo = dump64(k, k->offset_vmcoreinfo);
        sh.s32.size_vmcoreinfo = dump32(k, k->size_vmcoreinfo);
        sh.s32.offset_note = dump64(k, k->offset_note);
        sh.s32.note_size = dump32(k, s->note_size);
        sh.s32.max_mapnr_64 = dump64(k, k->max_mapnr);
        sh_size = sizeof(sh.s32);
    }
#undef FILL_DH

    if (!dump_output_pwrite(k->job->out, &dh, dh_size, 0)) {
        error_setg(errp, "dump: failed to write disk dump header");
        return false;
    }
    if (!dump_output_pwrite(k->job->out, &sh, sh_size, k->page_size)) {
        error_setg(errp, "dump: failed to write kdump sub header");
        return false;
    }
    if (!dump_output_pwrite(k->job->out, s->notes, s->note_size, k->offset_note)) {
        error_setg(errp, "dump: failed to write notes");
        return false;
    }
    return true;
}

static bool bitmap_flush(KdumpWriter *k, const uint8_t *buf1, const uint8_t *buf2,
                         uint64_t window)
{
    uint64_t off = window * k->page_size;

    return dump_output_pwrite(k->job->out, buf1, k->page_size,
                              k->offset_dump_bitmap + off) &&
           dump_output_pwrite(k->job->out, buf2, k->page_size,
                              k->offset_dump_bitmap + k->len_dump_bitmap + off);
}

/*
 * Both bitmaps, one page-sized window at a time, in QEMU's order: a window
 * is written (to the 1st, then the 2nd bitmap) when a later window gets its
 * first pfn, so empty windows in between are written as zeros and windows
 * after the last pfn never are. The 1st bitmap has every RAM pfn; the 2nd
 * leaves out what dump-level excluded, as makedumpfile's does.
 */
static bool kdump_write_bitmaps(KdumpWriter *k, Error **errp)
{
    const DumpGuestBlockList *blocks = &k->s->guest_phys_blocks;
    g_autofree uint8_t *buf1 = g_malloc0(k->page_size);
    g_autofree uint8_t *buf2 = g_malloc0(k->page_size);
    uint64_t bits = (uint64_t)k->page_size * 8;
    uint64_t window = 0;
    bool any = false;

    for (size_t i = 0; i < blocks->num; i++) {
        const DumpGuestBlock *b = &blocks->blocks[i];
        uint64_t first, last;

        if (b->target_end <= b->target_start) {
            continue;
        }
        first = b->target_start >> k->page_shift;
        last = (b->target_end - 1) >> k->page_shift;
        last = MIN(last, k->max_mapnr - 1);
        for (uint64_t pfn = first; pfn <= last; pfn++) {
            uint64_t bit = pfn % bits;

            while (window < pfn / bits) {
                if (!bitmap_flush(k, buf1, buf2, window)) {
                    error_setg(errp, "dump: failed to set dump_bitmap");
                    return false;
                }
                memset(buf1, 0, k->page_size);
                memset(buf2, 0, k->page_size);
                window++;
            }
            buf1[bit / 8] |= 1u << (bit % 8);
            if (kdump_pfn_kept(k, pfn)) {
                buf2[bit / 8] |= 1u << (bit % 8);
            }
            any = true;
        }
    }
    if (any && !bitmap_flush(k, buf1, buf2, window)) {
        error_setg(errp, "dump: failed to sync dump_bitmap");
        return false;
    }
    return true;
}

static bool cache_flush(KdumpWriter *k, KdumpCache *c)
{
    if (c->used == 0) {
        return true;
    }
    if (!dump_output_pwrite(k->job->out, c->buf, c->used, c->offset)) {
        return false;
    }
    c->offset += c->used;
    c->used = 0;
    return true;
}

static bool cache_append(KdumpWriter *k, KdumpCache *c, const void *data, size_t len)
{
    const uint8_t *p = data;

    if (!c->split) {
        if (c->used + len > c->size && !cache_flush(k, c)) {
            return false;
        }
        memcpy(c->buf + c->used, data, len);
        c->used += len;
        return true;
    }
    while (len > 0) {
        size_t room = c->size - (c->offset + c->used) % c->size;
        size_t n = MIN(room, len);

        memcpy(c->buf + c->used, p, n);
        c->used += n;
        p += n;
        len -= n;
        if (n == room && !cache_flush(k, c)) {
            return false;
        }
    }
    return true;
}

/*
 * Data pass over the blocks. Whole pages come straight from guest RAM.
 * A page that a block only partly covers is assembled in a zeroed scratch
 * page (8.1's rule: a block's edge ends the page); when the next block
 * starts inside the same page, its bytes join that page, as in 7.2, so
 * each pfn gets one descriptor and readers stay in step with the bitmap.
 */
static bool kdump_fill(void *opaque, DumpPageBatch *b, Error **errp)
{
    KdumpWriter *k = opaque;
    const DumpGuestBlockList *blocks = &k->s->guest_phys_blocks;
    uint64_t ps = k->page_size;

    while (b->count < b->capacity && k->block < blocks->num) {
        const DumpGuestBlock *blk = &blocks->blocks[k->block];
        uint64_t off;
        uint64_t pfn;
        uint8_t *page;

        if (k->addr < blk->target_start) {
            k->addr = blk->target_start;
        }
        if (k->addr >= blk->target_end) {
            k->block++;
            continue;
        }
        if (!kdump_pfn_kept(k, k->addr >> k->page_shift)) {
            /* Left out: the rest of this pfn in this block (the next block's
             * part of it, if any, is skipped the same way). */
            uint64_t next = MIN(blk->target_end, (k->addr | (ps - 1)) + 1);

            dump_progress_add(k->job, (int64_t)(next - k->addr));
            k->addr = next;
            continue;
        }
        off = k->addr & (ps - 1);
        if (off == 0 && blk->target_end - k->addr >= ps) {
            b->src[b->count++] = blk->host_addr + (k->addr - blk->target_start);
            k->addr += ps;
            continue;
        }
        page = dump_page_batch_scratch(b);
        pfn = k->addr >> k->page_shift;
        for (;;) {
            uint64_t n = MIN(blk->target_end - k->addr, ps - off);

            memcpy(page + off, blk->host_addr + (k->addr - blk->target_start), n);
            k->addr += n;
            if ((k->addr & (ps - 1)) == 0 || k->block + 1 >= blocks->num ||
                (blk[1].target_start >> k->page_shift) != pfn) {
                break;
            }
            k->block++;
            blk++;
            k->addr = blk->target_start;
            off = k->addr & (ps - 1);
        }
        b->src[b->count++] = page;
    }
    return true;
}

static bool kdump_consume(void *opaque, const DumpPageBatch *b, Error **errp)
{
    KdumpWriter *k = opaque;

    for (size_t i = 0; i < b->count; i++) {
        KdumpPageDesc pd;

        if (b->kind[i] == DUMP_PAGE_ZERO && k->share_zero) {
            pd = k->zero_desc;
        } else if (b->kind[i] == DUMP_PAGE_ZERO) {
            if (!cache_append(k, &k->data_cache, k->zero_data, k->zero_len)) {
                error_setg(errp, "dump: failed to write page data");
                return false;
            }
            pd.offset = dump64(k, k->offset_data);
            pd.size = dump32(k, k->zero_len);
            pd.flags = dump32(k, k->zero_len < k->page_size ? k->flag : 0);
            pd.page_flags = 0;
            k->offset_data += k->zero_len;
        } else {
            if (!cache_append(k, &k->data_cache, dump_page_batch_data(b, i),
                              b->len[i])) {
                error_setg(errp, "dump: failed to write page data");
                return false;
            }
            pd.offset = dump64(k, k->offset_data);
            pd.size = dump32(k, b->len[i]);
            pd.flags = dump32(k, b->kind[i] == DUMP_PAGE_COMPRESSED ? k->flag : 0);
            pd.page_flags = 0;
            k->offset_data += b->len[i];
        }
        if (!cache_append(k, &k->desc_cache, &pd, sizeof(pd))) {
            error_setg(errp, "dump: failed to write page desc");
            return false;
        }
    }
    dump_progress_add(k->job, (int64_t)b->count * k->page_size);
    return !dump_check_cancel(k->job, errp);
}

static bool kdump_write_pages(KdumpWriter *k, Error **errp)
{
    const DumpPlan *s = k->s;
    size_t cache_size = s->fmt->kdump_raw ? KDUMP_RAW_CACHE_SIZE
                                          : KDUMP_CACHE_PAGES * k->page_size;
    g_autofree uint8_t *zero = g_malloc0(k->page_size);

    k->desc_cache = (KdumpCache){ .buf = g_malloc(cache_size), .size = cache_size,
                                  .offset = k->offset_page,
                                  .split = s->fmt->kdump_raw };
    k->offset_data = k->offset_page + sizeof(KdumpPageDesc) * k->num_dumpable;
    k->data_cache = (KdumpCache){ .buf = g_malloc(cache_size), .size = cache_size,
                                  .offset = k->offset_data,
                                  .split = s->fmt->kdump_raw };

    k->share_zero = !s->has_dump_level || (s->dump_level & DUMP_LEVEL_ZERO);
    if (k->share_zero) {
        /* One shared copy of the zero page, first in the data area. */
        k->zero_desc = (KdumpPageDesc){
            .offset = dump64(k, k->offset_data),
            .size = dump32(k, k->page_size),
        };
        if (!cache_append(k, &k->data_cache, zero, k->page_size)) {
            error_setg(errp, "dump: failed to write page data (zero page)");
            return false;
        }
        k->offset_data += k->page_size;
    } else {
        DumpCodec *c = dump_codec_new(k->flag, k->page_size, errp);
        size_t n;

        if (!c) {
            return false;
        }
        k->zero_data = g_malloc(MAX(dump_codec_bound(k->flag, k->page_size),
                                    k->page_size));
        n = dump_codec_compress(c, zero, k->zero_data);
        dump_codec_free(c);
        if (n == 0) {
            memcpy(k->zero_data, zero, k->page_size);
            n = k->page_size;
        }
        k->zero_len = n;
    }

    k->block = 0;
    k->addr = 0;
    if (!dump_compress_pages(k->flag, k->page_size, dump_thread_count(),
                             KDUMP_BATCH_PAGES, kdump_fill, kdump_consume, k,
                             errp)) {
        return false;
    }
    if (!cache_flush(k, &k->desc_cache)) {
        error_setg(errp, "dump: failed to sync cache for page_desc");
        return false;
    }
    if (!cache_flush(k, &k->data_cache)) {
        error_setg(errp, "dump: failed to sync cache for page_data");
        return false;
    }
    return true;
}

static bool kdump_prepare(DumpJob *job, Error **errp)
{
    const DumpPlan *s = job->plan;
    KdumpWriter *k = g_new0(KdumpWriter, 1);
    const DumpGuestBlockList *blocks = &s->guest_phys_blocks;
    size_t sub_size;
    uint64_t last_end = 0;

    job->writer_state = k;
    k->job = job;
    k->s = s;
    k->flag = s->fmt->kdump_flag;
    k->big_endian = s->dump_info.d_endian == ELFDATA2MSB;
    k->class64 = s->dump_info.d_class != ELFCLASS32;
    k->page_size = s->dump_info.page_size;
    if (k->page_size < 512 || k->page_size > (1u << 20) ||
        (k->page_size & (k->page_size - 1))) {
        error_setg(errp, "dump: unsupported page size %zu", k->page_size);
        return false;
    }
    if (!dump_codec_available(k->flag)) {
        error_setg(errp, "dump: compression 0x%x is not available in this build",
                   k->flag);
        return false;
    }
    k->page_shift = __builtin_ctzl(k->page_size);
    k->dump_level = s->has_dump_level ? (uint32_t)s->dump_level : KDUMP_DUMP_LEVEL;

    for (size_t i = 0; i < blocks->num; i++) {
        const DumpGuestBlock *b = &blocks->blocks[i];

        if (b->target_end > b->target_start) {
            last_end = MAX(last_end, b->target_end);
        }
    }
    /*
     * QEMU takes the floor here, which leaves a last page that ends mid-page
     * outside max_mapnr (and its bit possibly outside the bitmap); counting
     * it keeps the dump self-consistent and is the same for aligned RAM.
     * With dump-level, makedumpfile's trim to the kernel's last section.
     */
    k->max_mapnr = (last_end + k->page_size - 1) >> k->page_shift;
    k->max_mapnr = MIN(k->max_mapnr, dump_linux_mm_max_pfn(s->linux_mm));
    for (size_t i = 0; i < blocks->num; i++) {
        const DumpGuestBlock *b = &blocks->blocks[i];
        uint64_t first = b->target_start >> k->page_shift;
        uint64_t last = (b->target_end - 1) >> k->page_shift;

        if (b->target_end > b->target_start && first < k->max_mapnr) {
            k->num_dumpable += MIN(last, k->max_mapnr - 1) - first + 1;
        }
    }
    k->len_dump_bitmap = round_up(div_round_up(k->max_mapnr, 8), k->page_size);
    if (2 * k->len_dump_bitmap > MAX(KDUMP_BITMAP_FLOOR,
                                     k->num_dumpable * k->page_size)) {
        error_setg(errp, "dump: guest RAM ends at 0x%llx: kdump bitmaps of %llu MiB "
                   "for %llu KiB of RAM are refused; use format elf",
                   (unsigned long long)last_end,
                   (unsigned long long)(2 * k->len_dump_bitmap >> 20),
                   (unsigned long long)(k->num_dumpable * k->page_size >> 10));
        return false;
    }

    sub_size = k->class64 ? sizeof(KdumpSubHeader64) : sizeof(KdumpSubHeader32);
    k->sub_hdr_size = div_round_up(sub_size + s->note_size, k->page_size);
    k->bitmap_blocks = 2 * (k->len_dump_bitmap / k->page_size);
    k->offset_note = k->page_size + sub_size;
    k->offset_dump_bitmap = (1 + (uint64_t)k->sub_hdr_size) * k->page_size;
    k->offset_page = k->offset_dump_bitmap + 2 * k->len_dump_bitmap;
    kdump_find_vmcoreinfo(k);
    return true;
}

/*
 * dump-level: which pfns to leave out, decided before the first byte is
 * written, in the worker (the guest may run again by then only when the
 * page source is a snapshot, which the classification reads too).
 */
static bool kdump_classify(KdumpWriter *k, Error **errp)
{
    const DumpPlan *s = k->s;
    const DumpGuestBlockList *blocks = &s->guest_phys_blocks;

    if (!s->has_dump_level) {
        return true;
    }
    k->filter = dump_filter_classify(s, s->linux_mm, s->dump_level, k->max_mapnr,
                                     &k->job->cancel, errp);
    if (!k->filter) {
        return false;
    }
    /* One descriptor per pfn the 2nd bitmap keeps (counted as prepare counts). */
    for (size_t i = 0; i < blocks->num; i++) {
        const DumpGuestBlock *b = &blocks->blocks[i];

        if (b->target_end <= b->target_start) {
            continue;
        }
        for (uint64_t pfn = b->target_start >> k->page_shift;
             pfn <= (b->target_end - 1) >> k->page_shift && pfn < k->max_mapnr;
             pfn++) {
            if (dump_filter_excluded(k->filter, pfn)) {
                k->num_dumpable--;
            }
        }
    }
    return true;
}

static bool kdump_write(DumpJob *job, Error **errp)
{
    KdumpWriter *k = job->writer_state;

    return kdump_classify(k, errp) &&
           kdump_write_headers(k, errp) &&
           kdump_write_bitmaps(k, errp) &&
           kdump_write_pages(k, errp);
}

static void kdump_cleanup(DumpJob *job)
{
    KdumpWriter *k = job->writer_state;

    if (!k) {
        return;
    }
    g_free(k->desc_cache.buf);
    g_free(k->data_cache.buf);
    dump_filter_free(k->filter);
    g_free(k->zero_data);
    g_free(k);
    job->writer_state = NULL;
}

const DumpWriter dump_kdump_writer = {
    .prepare = kdump_prepare,
    .write = kdump_write,
    .cleanup = kdump_cleanup,
};
