/* kdump-compressed input: makedumpfile's diskdump format, raw or flattened. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "config-host.h"
#ifdef CONFIG_LZO
#include <lzo/lzo1x.h>
#endif
#ifdef CONFIG_SNAPPY
#include <snappy-c.h>
#endif
#ifdef CONFIG_ZSTD
#include <zstd.h>
#endif

#include "qemu/bswap.h"
#include "system/kdump-read.h"
#include "system/vmcore-probe.h"

/* makedumpfile's flag bits (header status, page descriptor flags). */
#define KD_ZLIB        0x1
#define KD_LZO         0x2
#define KD_SNAPPY      0x4
#define KD_INCOMPLETE  0x8      /* header status: makedumpfile ran out of space */
#define KD_ZSTD        0x20
#define KD_CODECS      (KD_ZLIB | KD_LZO | KD_SNAPPY | KD_ZSTD)

/* The header versions makedumpfile has written; 1.7.2 writes 6. */
#define KD_VERSION_MAX 6
#define KD_DESC_SIZE   24
/* No x86 guest has RAM above 2^52 (MAXPHYADDR). */
#define KD_MAX_PFN     (1ULL << 40)

/* Flattened format: a 4096-byte header, then big-endian (offset, size) records. */
#define FLAT_HEADER_SIZE 4096
#define FLAT_TYPE        1
#define FLAT_VERSION     1

struct KdumpReader {
    int fd;                     /* the raw file: the input, or the reassembled copy */
    int tmp_fd;                 /* the reassembled copy of a flattened input, or -1 */
    uint64_t file_size;
    bool class64;
    uint32_t version;
    uint32_t status;
    uint32_t dump_level;
    uint64_t phys_base;
    uint64_t max_mapnr;
    uint64_t bitmap1, bitmap_len;   /* offset of the first bitmap, bytes of each */
    uint64_t offset_page;           /* the page descriptors */
    uint64_t pages;                 /* bits set in the second bitmap below max_mapnr */
    GArray *runs;                   /* KdumpRun */
    uint8_t *notes;
    size_t notes_len;
    uint8_t *window;                /* KDUMP_READ_WINDOW bytes of page data */
    uint64_t window_off, window_len;
};

static bool kread(int fd, uint64_t size, uint64_t off, void *buf, uint64_t len,
                  const char *what, Error **errp)
{
    return vmcore_pread(fd, size, off, buf, len, "kdump file", what, errp);
}

static bool rread(KdumpReader *r, uint64_t off, void *buf, uint64_t len, const char *what,
                  Error **errp)
{
    return kread(r->fd, r->file_size, off, buf, len, what, errp);
}

static uint64_t ldq_be(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_BE(v);
}

/*
 * The flattened format is the raw file cut into records (offset, size,
 * data) meant for a pipe; later records overwrite earlier ones (makedumpfile
 * rewrites its sub header last). Writing every record where it belongs
 * gives the raw file, as `makedumpfile -R` does. It goes into an unlinked
 * temporary file: memory stays constant and holes stay holes.
 */
static int flat_reassemble(int in, uint64_t in_size, uint64_t *out_size, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(KDUMP_READ_WINDOW);
    uint8_t h[32];
    uint64_t pos = FLAT_HEADER_SIZE, end = 0;
    int out;

    if (!kread(in, in_size, 0, h, 32, "flattened header", errp)) {
        return -1;
    }
    if (memcmp(h, "makedumpfile\0\0\0\0", 16) || ldq_be(h + 16) != FLAT_TYPE ||
        ldq_be(h + 24) != FLAT_VERSION) {
        error_setg(errp, "flattened kdump file has an unknown header (type %llu, version "
                   "%llu; makedumpfile writes 1 and 1)", (unsigned long long)ldq_be(h + 16),
                   (unsigned long long)ldq_be(h + 24));
        return -1;
    }
    out = vmcore_tmpfile("reassemble the flattened kdump file", errp);
    if (out < 0) {
        return -1;
    }
    /* Each record is at least its 16-byte header: bounded by in_size / 16. */
    for (;;) {
        uint64_t off, len;

        if (!kread(in, in_size, pos, h, 16, "flattened record header (the end marker "
                   "is missing)", errp)) {
            goto fail;
        }
        off = ldq_be(h);
        len = ldq_be(h + 8);
        pos += 16;
        if (off == UINT64_MAX && len == UINT64_MAX) {
            break;
        }
        if (off >= KDUMP_READ_MAX_FLAT_SIZE || len > KDUMP_READ_MAX_FLAT_SIZE - off) {
            error_setg(errp, "flattened record at offset 0x%llx places 0x%llx bytes at "
                       "0x%llx, beyond %llu TiB", (unsigned long long)(pos - 16),
                       (unsigned long long)len, (unsigned long long)off,
                       KDUMP_READ_MAX_FLAT_SIZE >> 40);
            goto fail;
        }
        if (len > in_size - pos) {
            error_setg(errp, "kdump file is truncated: flattened record at offset 0x%llx "
                       "claims 0x%llx bytes, the file ends at 0x%llx",
                       (unsigned long long)(pos - 16), (unsigned long long)len,
                       (unsigned long long)in_size);
            goto fail;
        }
        for (uint64_t done = 0; done < len;) {
            uint64_t n = MIN(len - done, KDUMP_READ_WINDOW);
            ssize_t w;

            if (!kread(in, in_size, pos + done, buf, n, "flattened record", errp)) {
                goto fail;
            }
            w = pwrite(out, buf, n, off + done);
            if (w != (ssize_t)n) {
                error_setg_errno(errp, w < 0 ? errno : ENOSPC, "cannot write the "
                                 "reassembled kdump file in %s", g_get_tmp_dir());
                goto fail;
            }
            done += n;
        }
        pos += len;
        end = MAX(end, off + len);
    }
    *out_size = end;
    return out;

fail:
    close(out);
    return -1;
}

/*
 * The header's layout depends on the dumped machine's word size (struct
 * timeval and unsigned long), not on utsname.machine (QEMU writes "x86_64"
 * for 32-bit guests too). x86_64: block_size at 428, and 420 is the high
 * half of tv_usec, always 0. i386: block_size at 416, and 420 is
 * sub_hdr_size, at least 1 whenever there is a sub header (an i386 file of
 * version 1 with exactly 4096 page frames would be taken for x86_64, and
 * then refused by the checks that follow).
 */
static bool pick_layout(const uint8_t *h, bool *class64, Error **errp)
{
    if (ldl_le_p(h + 428) == KDUMP_READ_PAGE_SIZE && ldl_le_p(h + 420) == 0) {
        *class64 = true;
    } else if (ldl_le_p(h + 416) == KDUMP_READ_PAGE_SIZE) {
        *class64 = false;
    } else {
        error_setg(errp, "kdump file's block size is %u (x86_64 layout) or %u (i386 "
                   "layout), not the x86 page size %u", ldl_le_p(h + 428),
                   ldl_le_p(h + 416), KDUMP_READ_PAGE_SIZE);
        return false;
    }
    return true;
}

static void note_append(GByteArray *b, const char *name, uint32_t type,
                        const uint8_t *desc, uint32_t descsz)
{
    static const uint8_t zero[4];
    uint32_t namesz = strlen(name) + 1;
    uint32_t hdr[3] = { GUINT32_TO_LE(namesz), GUINT32_TO_LE(descsz),
                        GUINT32_TO_LE(type) };

    g_byte_array_append(b, (const uint8_t *)hdr, 12);
    g_byte_array_append(b, (const uint8_t *)name, namesz);
    g_byte_array_append(b, zero, (4 - namesz % 4) % 4);
    g_byte_array_append(b, desc, descsz);
    g_byte_array_append(b, zero, (4 - descsz % 4) % 4);
}

/* True when the chunk holds a note named VMCOREINFO (a bounded walk). */
static bool notes_have_vmcoreinfo(const uint8_t *n, size_t len)
{
    size_t off = 0;

    while (len - off >= 12) {
        uint64_t namesz = ldl_le_p(n + off), descsz = ldl_le_p(n + off + 4);
        uint64_t sz = 12 + ((namesz + 3) & ~3ULL) + ((descsz + 3) & ~3ULL);

        if (sz > len - off) {
            return false;
        }
        if (namesz == 11 && !memcmp(n + off + 12, "VMCOREINFO", 11)) {
            return true;
        }
        if (namesz == 0 && descsz == 0) {
            return false;
        }
        off += sz;
    }
    return false;
}

static bool read_sub_header(KdumpReader *r, const uint8_t *h, uint32_t sub_blocks,
                            Error **errp)
{
    uint8_t sh[104] = { 0 };
    uint64_t off_vmci, size_vmci, off_note, size_note, off_erase, size_erase, split;
    size_t shsize = r->class64 ? 104 : 80;
    g_autoptr(GByteArray) notes = g_byte_array_new();

    r->max_mapnr = ldl_le_p(h + (r->class64 ? 440 : 428));
    if (r->version < 2) {
        return true;                /* diskdump's header had no sub header */
    }
    if (sub_blocks == 0) {
        error_setg(errp, "kdump file of header version %u has no sub header",
                   r->version);
        return false;
    }
    if (!rread(r, KDUMP_READ_PAGE_SIZE, sh, shsize, "sub header", errp)) {
        return false;
    }
    if (r->class64) {
        r->phys_base = ldq_le_p(sh);
        r->dump_level = ldl_le_p(sh + 8);
        split = ldl_le_p(sh + 12);
        off_vmci = ldq_le_p(sh + 32);
        size_vmci = ldq_le_p(sh + 40);
        off_note = ldq_le_p(sh + 48);
        size_note = ldq_le_p(sh + 56);
        off_erase = ldq_le_p(sh + 64);
        size_erase = ldq_le_p(sh + 72);
        if (r->version >= 6) {
            r->max_mapnr = ldq_le_p(sh + 96);
        }
    } else {
        r->phys_base = ldl_le_p(sh);
        r->dump_level = ldl_le_p(sh + 4);
        split = ldl_le_p(sh + 8);
        off_vmci = ldq_le_p(sh + 20);
        size_vmci = ldl_le_p(sh + 28);
        off_note = ldq_le_p(sh + 32);
        size_note = ldl_le_p(sh + 40);
        off_erase = ldq_le_p(sh + 44);
        size_erase = ldl_le_p(sh + 52);
        if (r->version >= 6) {
            r->max_mapnr = ldq_le_p(sh + 72);
        }
    }
    if (split) {
        error_setg(errp, "kdump file is one part of a split dump (makedumpfile --split): "
                   "reassemble the parts with makedumpfile --reassemble first");
        return false;
    }
    if (r->version < 3) {
        off_vmci = size_vmci = 0;
    }
    if (r->version < 4) {
        off_note = size_note = 0;
    }
    if (r->version < 5) {
        off_erase = size_erase = 0;
    }
    /* Notes, VMCOREINFO and eraseinfo: each within the file, bounded. */
    {
        const struct { const char *what; uint64_t off, size; } area[] = {
            { "VMCOREINFO", off_vmci, size_vmci },
            { "ELF notes", off_note, size_note },
            { "eraseinfo", off_erase, size_erase },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(area); i++) {
            if (area[i].size == 0) {
                continue;
            }
            if (area[i].off > r->file_size || area[i].size > r->file_size - area[i].off) {
                error_setg(errp, "kdump file is truncated: its %s (0x%llx bytes at "
                           "0x%llx) is past the end of the file (0x%llx bytes)",
                           area[i].what, (unsigned long long)area[i].size,
                           (unsigned long long)area[i].off,
                           (unsigned long long)r->file_size);
                return false;
            }
            if (area[i].size > KDUMP_READ_MAX_NOTES) {
                error_setg(errp, "kdump file's %s is 0x%llx bytes, more than the %u MiB "
                           "accepted", area[i].what, (unsigned long long)area[i].size,
                           KDUMP_READ_MAX_NOTES >> 20);
                return false;
            }
        }
    }
    if (size_note) {
        g_byte_array_set_size(notes, size_note);
        if (!rread(r, off_note, notes->data, size_note, "ELF notes", errp)) {
            return false;
        }
    }
    if (size_vmci && !notes_have_vmcoreinfo(notes->data, notes->len)) {
        g_autofree uint8_t *text = g_malloc(size_vmci);
        if (!rread(r, off_vmci, text, size_vmci, "VMCOREINFO", errp)) {
            return false;
        }
        note_append(notes, "VMCOREINFO", 0, text, size_vmci);
    }
    r->notes_len = notes->len;
    r->notes = r->notes_len ? g_byte_array_free(g_steal_pointer(&notes), FALSE) : NULL;
    return true;
}

static bool read_header(KdumpReader *r, Error **errp)
{
    uint8_t h[464] = { 0 };
    uint32_t sub_blocks, bitmap_blocks;
    uint64_t end;

    if (!rread(r, 0, h, MIN(r->file_size, sizeof(h)), "header", errp)) {
        return false;
    }
    if (r->file_size < sizeof(h)) {
        error_setg(errp, "kdump file is truncated: %llu bytes, shorter than its header",
                   (unsigned long long)r->file_size);
        return false;
    }
    if (memcmp(h, "KDUMP   ", 8)) {
        error_setg(errp, "not a kdump file (no \"KDUMP   \" signature)");
        return false;
    }
    r->version = ldl_le_p(h + 8);
    if (r->version == 0 || r->version > KD_VERSION_MAX) {
        error_setg(errp, "kdump file has header version %u; this reader knows 1 to %u",
                   r->version, KD_VERSION_MAX);
        return false;
    }
    if (!pick_layout(h, &r->class64, errp)) {
        return false;
    }
    {
        const uint8_t *f = h + (r->class64 ? 424 : 412);
        r->status = ldl_le_p(f);
        sub_blocks = ldl_le_p(f + 8);
        bitmap_blocks = ldl_le_p(f + 12);
    }
    if (r->status & KD_INCOMPLETE) {
        error_setg(errp, "kdump file is marked incomplete (makedumpfile ran out of space "
                   "while writing it)");
        return false;
    }
    if (r->status & ~(uint32_t)KD_CODECS) {
        error_setg(errp, "kdump file has unknown status flags 0x%x", r->status);
        return false;
    }
    if (bitmap_blocks == 0 || bitmap_blocks % 2) {
        error_setg(errp, "kdump file has %u bitmap blocks (an even number, at least 2, "
                   "expected: two bitmaps of the same size)", bitmap_blocks);
        return false;
    }
    end = (1 + (uint64_t)sub_blocks + bitmap_blocks) * KDUMP_READ_PAGE_SIZE;
    if (end > r->file_size) {
        error_setg(errp, "kdump file is truncated: its header, sub header and bitmaps "
                   "need 0x%llx bytes, the file has 0x%llx", (unsigned long long)end,
                   (unsigned long long)r->file_size);
        return false;
    }
    r->bitmap1 = (1 + (uint64_t)sub_blocks) * KDUMP_READ_PAGE_SIZE;
    r->bitmap_len = (uint64_t)bitmap_blocks / 2 * KDUMP_READ_PAGE_SIZE;
    r->offset_page = end;
    if (!read_sub_header(r, h, sub_blocks, errp)) {
        return false;
    }
    if (r->max_mapnr > KD_MAX_PFN) {
        error_setg(errp, "kdump file claims %llu page frames, beyond x86's 52-bit "
                   "physical address space", (unsigned long long)r->max_mapnr);
        return false;
    }
    if (r->max_mapnr > r->bitmap_len * 8) {
        error_setg(errp, "kdump file claims %llu page frames but its bitmaps hold %llu",
                   (unsigned long long)r->max_mapnr,
                   (unsigned long long)(r->bitmap_len * 8));
        return false;
    }
    return true;
}

static bool split_isa_rom(KdumpReader *r, uint64_t max_runs, Error **errp);

static bool add_page(KdumpReader *r, uint64_t pfn, uint64_t max_runs, Error **errp)
{
    KdumpRun *last = r->runs->len ? &g_array_index(r->runs, KdumpRun, r->runs->len - 1)
                                  : NULL;

    if (last && last->pfn + last->count == pfn) {
        last->count++;
        return true;
    }
    if (r->runs->len >= max_runs) {
        error_setg(errp, "kdump file's pages form more than %llu runs (blocks of "
                   "memory); at most %llu are accepted", (unsigned long long)max_runs,
                   (unsigned long long)max_runs);
        return false;
    }
    g_array_append_val(r->runs, ((KdumpRun) { pfn, 1, r->pages }));
    return true;
}

/*
 * Both bitmaps, streamed: the second's pages must be in the first (pages
 * in memory; makedumpfile clears filtered pages in the second only), and
 * give the runs.
 */
static bool scan_bitmaps(KdumpReader *r, uint64_t max_runs, Error **errp)
{
    uint64_t used = (r->max_mapnr + 7) / 8;
    uint64_t descs_room = (r->file_size - r->offset_page) / KD_DESC_SIZE;
    g_autofree uint8_t *b1 = g_malloc(KDUMP_READ_WINDOW);
    g_autofree uint8_t *b2 = g_malloc(KDUMP_READ_WINDOW);

    r->runs = g_array_new(FALSE, FALSE, sizeof(KdumpRun));
    for (uint64_t at = 0; at < used; at += KDUMP_READ_WINDOW) {
        uint64_t n = MIN(used - at, KDUMP_READ_WINDOW);

        if (!rread(r, r->bitmap1 + at, b1, n, "first bitmap", errp) ||
            !rread(r, r->bitmap1 + r->bitmap_len + at, b2, n, "second bitmap", errp)) {
            return false;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint8_t bits = b2[i];

            if ((at + i) * 8 + 8 > r->max_mapnr) {
                bits &= (1u << (r->max_mapnr - (at + i) * 8)) - 1;
            }
            if (!bits) {
                continue;
            }
            if (r->pages > descs_room) {
                /* already refused: only count the rest, for the message */
                r->pages += __builtin_popcount(bits);
                continue;
            }
            if (bits & ~b1[i]) {
                error_setg(errp, "kdump file's second bitmap has page 0x%llx, which "
                           "its first bitmap lacks", (unsigned long long)
                           ((at + i) * 8 + __builtin_ctz(bits & ~b1[i])));
                return false;
            }
            for (int bit = 0; bit < 8; bit++) {
                if ((bits & (1u << bit)) &&
                    !add_page(r, (at + i) * 8 + bit, max_runs, errp)) {
                    return false;
                }
                r->pages += (bits >> bit) & 1;
            }
        }
    }
    if (r->pages > descs_room) {
        error_setg(errp, "kdump file's bitmap claims %llu pages but the file holds "
                   "descriptors for %llu", (unsigned long long)r->pages,
                   (unsigned long long)descs_room);
        return false;
    }
    return true;
}

KdumpReader *kdump_reader_open(int fd, uint64_t max_runs, Error **errp)
{
    g_autoptr(KdumpReader) r = g_new0(KdumpReader, 1);
    struct stat st;
    uint8_t magic[12] = { 0 };

    r->fd = fd;
    r->tmp_fd = -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error_setg(errp, "kdump file is not a regular file");
        return NULL;
    }
    r->file_size = st.st_size;
    if (!rread(r, 0, magic, MIN(r->file_size, sizeof(magic)), "signature", errp)) {
        return NULL;
    }
    if (r->file_size >= 12 && !memcmp(magic, "makedumpfile", 12)) {
        r->tmp_fd = flat_reassemble(fd, r->file_size, &r->file_size, errp);
        if (r->tmp_fd < 0) {
            return NULL;
        }
        r->fd = r->tmp_fd;
    }
    r->window = g_malloc(KDUMP_READ_WINDOW);
    if (!read_header(r, errp) || !scan_bitmaps(r, max_runs, errp) ||
        !split_isa_rom(r, max_runs, errp)) {
        return NULL;
    }
    return g_steal_pointer(&r);
}

void kdump_reader_free(KdumpReader *r)
{
    if (!r) {
        return;
    }
    if (r->tmp_fd >= 0) {
        close(r->tmp_fd);
    }
    if (r->runs) {
        g_array_free(r->runs, TRUE);
    }
    g_free(r->notes);
    g_free(r->window);
    g_free(r);
}

bool kdump_reader_class64(const KdumpReader *r)
{
    return r->class64;
}

uint64_t kdump_reader_phys_base(const KdumpReader *r)
{
    return r->phys_base;
}

uint32_t kdump_reader_dump_level(const KdumpReader *r)
{
    return r->dump_level;
}

const KdumpRun *kdump_reader_runs(const KdumpReader *r, size_t *count, uint64_t *pages)
{
    *count = r->runs->len;
    *pages = r->pages;
    return (const KdumpRun *)r->runs->data;
}

const uint8_t *kdump_reader_notes(const KdumpReader *r, size_t *len)
{
    *len = r->notes_len;
    return r->notes;
}

/* Page data through a window: descriptors usually point at increasing offsets. */
static const uint8_t *page_data(KdumpReader *r, uint64_t off, uint32_t size, Error **errp)
{
    if (off >= r->window_off && off - r->window_off <= r->window_len &&
        size <= r->window_len - (off - r->window_off)) {
        return r->window + (off - r->window_off);
    }
    if (off > r->file_size || size > r->file_size - off) {
        error_setg(errp, "kdump file is truncated: page data at offset 0x%llx+0x%x is "
                   "past the end of the file (0x%llx bytes)", (unsigned long long)off,
                   size, (unsigned long long)r->file_size);
        return NULL;
    }
    r->window_off = off;
    r->window_len = MIN(KDUMP_READ_WINDOW, r->file_size - off);
    if (!rread(r, off, r->window, r->window_len, "page data", errp)) {
        r->window_len = 0;
        return NULL;
    }
    return r->window;
}

static const char *codec_name(uint32_t flags)
{
    switch (flags) {
    case KD_ZLIB:
        return "zlib";
    case KD_LZO:
        return "lzo";
    case KD_SNAPPY:
        return "snappy";
    case KD_ZSTD:
        return "zstd";
    }
    return "?";
}

/* Decompresses exactly one page into out; false when the data is not one page. */
static bool decompress(uint32_t flags, const uint8_t *in, uint32_t size, uint8_t *out,
                       bool *missing)
{
    *missing = false;
    switch (flags) {
    case KD_ZLIB: {
        uLongf n = KDUMP_READ_PAGE_SIZE;
        return uncompress(out, &n, in, size) == Z_OK && n == KDUMP_READ_PAGE_SIZE;
    }
#ifdef CONFIG_LZO
    case KD_LZO: {
        lzo_uint n = KDUMP_READ_PAGE_SIZE;
        return lzo1x_decompress_safe(in, size, out, &n, NULL) == LZO_E_OK &&
               n == KDUMP_READ_PAGE_SIZE;
    }
#endif
#ifdef CONFIG_SNAPPY
    case KD_SNAPPY: {
        size_t n = 0;
        if (snappy_uncompressed_length((const char *)in, size, &n) != SNAPPY_OK ||
            n != KDUMP_READ_PAGE_SIZE) {
            return false;
        }
        return snappy_uncompress((const char *)in, size, (char *)out, &n) == SNAPPY_OK &&
               n == KDUMP_READ_PAGE_SIZE;
    }
#endif
#ifdef CONFIG_ZSTD
    case KD_ZSTD:
        return ZSTD_decompress(out, KDUMP_READ_PAGE_SIZE, in, size) ==
               KDUMP_READ_PAGE_SIZE;
#endif
    }
    *missing = true;
    return false;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;

    for (size_t i = 0; i < KDUMP_READ_PAGE_SIZE / 8; i++) {
        if (q[i]) {
            return false;
        }
    }
    return true;
}

/* Page pfn, whose descriptor is d, decompressed into page. */
static bool decode_page(KdumpReader *r, uint64_t pfn, const uint8_t *d, uint8_t *page,
                        Error **errp)
{
    uint64_t off = ldq_le_p(d);
    uint32_t size = ldl_le_p(d + 8), flags = ldl_le_p(d + 12);
    const uint8_t *data;
    bool missing;

    if (flags & ~(uint32_t)KD_CODECS || __builtin_popcount(flags) > 1) {
        error_setg(errp, "kdump page 0x%llx has unknown flags 0x%x",
                   (unsigned long long)pfn, flags);
        return false;
    }
    if (size == 0 || size > KDUMP_READ_PAGE_SIZE ||
        (!flags && size != KDUMP_READ_PAGE_SIZE)) {
        error_setg(errp, "kdump page 0x%llx has %u bytes of %s data (a page is "
                   "%u bytes)", (unsigned long long)pfn, size,
                   flags ? "compressed" : "uncompressed", KDUMP_READ_PAGE_SIZE);
        return false;
    }
    data = page_data(r, off, size, errp);
    if (!data) {
        return false;
    }
    if (!flags) {
        memcpy(page, data, KDUMP_READ_PAGE_SIZE);
    } else if (!decompress(flags, data, size, page, &missing)) {
        if (missing) {
            error_setg(errp, "kdump page 0x%llx is compressed with %s, which "
                       "this build of guestdump lacks", (unsigned long long)pfn,
                       codec_name(flags));
        } else {
            error_setg(errp, "kdump page 0x%llx: its %s data does not "
                       "decompress to one page", (unsigned long long)pfn,
                       codec_name(flags));
        }
        return false;
    }
    return true;
}

/* One page by pfn: its descriptor is its run's first plus its place in the run. */
static bool read_page(KdumpReader *r, uint64_t pfn, uint8_t *page, bool *present,
                      Error **errp)
{
    uint8_t d[KD_DESC_SIZE];

    *present = false;
    for (guint i = 0; i < r->runs->len; i++) {
        const KdumpRun *run = &g_array_index(r->runs, KdumpRun, i);
        if (pfn >= run->pfn && pfn - run->pfn < run->count) {
            *present = true;
            return rread(r, r->offset_page + (run->index + pfn - run->pfn) * KD_DESC_SIZE,
                         d, KD_DESC_SIZE, "page descriptor", errp) &&
                   decode_page(r, pfn, d, page, errp);
        }
    }
    return true;
}

/*
 * kdump knows page frames, not QEMU's blocks. A PC's blocks meet without
 * a hole only in the ISA ROM area: while the firmware has not made it RAM
 * (a machine started with -S), 0xc0000 is pc.rom and 0xe0000 QEMU's
 * isa-bios, an alias of the last 128 KiB of the BIOS below 4 GiB, then RAM
 * at 0x100000; once the firmware shadowed it, it is RAM and QEMU's ELF has
 * one block there. So the runs are split at 0xc0000, 0xe0000 and 0x100000
 * exactly when 0xe0000-0xfffff holds the BIOS's last 128 KiB.
 */
#define ISA_BIOS      0xe0000
#define ISA_BIOS_SIZE 0x20000
#define HIGH_BIOS     (0x100000000ULL - ISA_BIOS_SIZE)

static bool split_isa_rom(KdumpReader *r, uint64_t max_runs, Error **errp)
{
    static const uint64_t cuts[] = { 0xc0000, 0xe0000, 0x100000 };
    g_autofree uint8_t *a = g_malloc(KDUMP_READ_PAGE_SIZE);
    g_autofree uint8_t *b = g_malloc(KDUMP_READ_PAGE_SIZE);

    for (uint64_t off = 0; off < ISA_BIOS_SIZE; off += KDUMP_READ_PAGE_SIZE) {
        bool pa, pb;

        if (!read_page(r, (ISA_BIOS + off) / KDUMP_READ_PAGE_SIZE, a, &pa, errp) ||
            !read_page(r, (HIGH_BIOS + off) / KDUMP_READ_PAGE_SIZE, b, &pb, errp)) {
            return false;
        }
        if (!pa || !pb || memcmp(a, b, KDUMP_READ_PAGE_SIZE)) {
            return true;
        }
    }
    for (size_t c = 0; c < G_N_ELEMENTS(cuts); c++) {
        uint64_t pfn = cuts[c] / KDUMP_READ_PAGE_SIZE;

        for (guint i = 0; i < r->runs->len; i++) {
            KdumpRun *run = &g_array_index(r->runs, KdumpRun, i);
            if (pfn > run->pfn && pfn - run->pfn < run->count) {
                KdumpRun tail = { pfn, run->count - (pfn - run->pfn),
                                  run->index + (pfn - run->pfn) };
                if (r->runs->len >= max_runs) {
                    error_setg(errp, "kdump file's pages form more than %llu runs "
                               "(blocks of memory); at most %llu are accepted",
                               (unsigned long long)max_runs,
                               (unsigned long long)max_runs);
                    return false;
                }
                run->count = pfn - run->pfn;
                g_array_insert_val(r->runs, i + 1, tail);
                break;
            }
        }
    }
    return true;
}

bool kdump_reader_read_pages(KdumpReader *r, KdumpPageFn fn, void *opaque, Error **errp)
{
    const size_t ndesc = KDUMP_READ_WINDOW / KD_DESC_SIZE;
    g_autofree uint8_t *descs = g_malloc(ndesc * KD_DESC_SIZE);
    g_autofree uint8_t *page = g_malloc(KDUMP_READ_PAGE_SIZE);
    uint64_t index = 0;

    r->window_len = 0;
    for (guint ri = 0; ri < r->runs->len; ri++) {
        const KdumpRun *run = &g_array_index(r->runs, KdumpRun, ri);

        for (uint64_t pfn = run->pfn; pfn < run->pfn + run->count; pfn++, index++) {
            if (index % ndesc == 0 &&
                !rread(r, r->offset_page + index * KD_DESC_SIZE, descs,
                       MIN(ndesc, r->pages - index) * KD_DESC_SIZE, "page descriptors",
                       errp)) {
                return false;
            }
            if (!decode_page(r, pfn, descs + (index % ndesc) * KD_DESC_SIZE, page, errp)) {
                return false;
            }
            if (!page_is_zero(page) && !fn(opaque, pfn, page, errp)) {
                return false;
            }
        }
    }
    return true;
}
