/* Page codecs of the kdump writer and the pool of threads that runs them. */
#ifndef DUMP_COMPRESS_H
#define DUMP_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

/* makedumpfile's disk_dump_header.status / page_desc.flags values. */
#define DUMP_DH_COMPRESSED_ZLIB    0x1
#define DUMP_DH_COMPRESSED_LZO     0x2
#define DUMP_DH_COMPRESSED_SNAPPY  0x4
#define DUMP_DH_COMPRESSED_ZSTD    0x20

/* True when this build can write pages with the codec named by flag. */
bool dump_codec_available(uint32_t flag);
/* Bytes the output buffer of one page needs (QEMU's per-codec bound). */
size_t dump_codec_bound(uint32_t flag, size_t page_size);

/* One compressor with its private state; use from one thread at a time. */
typedef struct DumpCodec DumpCodec;

DumpCodec *dump_codec_new(uint32_t flag, size_t page_size, Error **errp);
/*
 * Compresses one page into out (dump_codec_bound() bytes). Returns the
 * compressed length, or 0 when the page is to be stored as it is: the codec
 * failed or did not make it strictly smaller than the page (QEMU's rule).
 */
size_t dump_codec_compress(DumpCodec *c, const uint8_t *page, uint8_t *out);
void dump_codec_free(DumpCodec *c);
/*
 * True only when zlib level 1 certainly cannot store the page in fewer
 * than 4096 bytes (see dump-compress.c); the codec then skips deflate.
 */
bool dump_zlib_cannot_shrink(DumpCodec *c, const uint8_t *page);

bool dump_page_is_zero(const void *page, size_t len);

/* ---------------------------------------------------------------------- */
/* The page pipeline                                                        */
/* ---------------------------------------------------------------------- */

typedef enum DumpPageKind {
    DUMP_PAGE_ZERO,
    DUMP_PAGE_RAW,
    DUMP_PAGE_COMPRESSED,
} DumpPageKind;

/*
 * A run of pages in dump order. The producer sets src[] (pointers that stay
 * valid until the batch is consumed: guest RAM or the batch's own scratch
 * pages) and count; the workers fill kind[] and len[].
 */
typedef struct DumpPageBatch {
    size_t count;
    size_t capacity;
    size_t page_size;
    const uint8_t **src;
    uint8_t *kind;              /* DumpPageKind */
    uint32_t *len;              /* stored bytes of each page */
    /* Private to dump-compress.c. */
    uint8_t *out;
    size_t bound;
    uint8_t *scratch;
    size_t scratch_used;
    bool done;
} DumpPageBatch;

/*
 * A zeroed page owned by the batch, for pages the producer assembles from
 * pieces (blocks that start or end mid-page). Valid until consumed.
 */
uint8_t *dump_page_batch_scratch(DumpPageBatch *b);
/* The bytes to store for page i: the compressed data or the page itself. */
const uint8_t *dump_page_batch_data(const DumpPageBatch *b, size_t i);

/* Fills b (count 0 .. capacity); count 0 means there are no more pages. */
typedef bool (*DumpPageFillFn)(void *opaque, DumpPageBatch *b, Error **errp);
/* Takes the results of one batch; batches arrive in fill order. */
typedef bool (*DumpPageConsumeFn)(void *opaque, const DumpPageBatch *b,
                                  Error **errp);

/*
 * Classifies and compresses every page the fill callback produces on
 * `threads` worker threads (1: in the caller), `batch_pages` pages per
 * batch, and hands the results to consume in order, on the caller's thread.
 * Memory held: about 2 x threads batches, whatever the number of pages.
 */
bool dump_compress_pages(uint32_t flag, size_t page_size, int threads,
                         size_t batch_pages, DumpPageFillFn fill,
                         DumpPageConsumeFn consume, void *opaque, Error **errp);

#endif
