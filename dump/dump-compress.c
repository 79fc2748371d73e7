/* kdump page codecs (zlib, lzo, snappy, zstd) and the worker pool that runs them. */
#include <glib.h>
#include <stdatomic.h>
#include <string.h>
#include <zlib.h>

#include "config-host.h"
#include "dump-compress.h"

#ifdef CONFIG_LZO
#include <lzo/lzo1x.h>
#endif
#ifdef CONFIG_SNAPPY
#include <snappy-c.h>
#endif
#ifdef CONFIG_ZSTD
#include <zstd.h>
#endif

/*
 * More workers than this cannot be busy on any machine we dump from, and
 * each costs two batches (about 5 MB): -dump-threads 1024 must not mean 5 GB.
 */
#define DUMP_MAX_WORKERS 64

/* makedumpfile compresses zstd pages at level 1; speed is the point of kdump here. */
#define DUMP_ZSTD_LEVEL 1

struct DumpCodec {
    uint32_t flag;
    size_t page_size;
    size_t bound;
    z_stream zs;
    bool zs_ready;
    uint32_t *seen;                 /* zlib_cannot_shrink's 3-byte set */
    uint32_t seen_gen;
    void *lzo_wrkmem;
#ifdef CONFIG_ZSTD
    ZSTD_CCtx *zctx;
#endif
};

bool dump_codec_available(uint32_t flag)
{
    switch (flag) {
    case DUMP_DH_COMPRESSED_ZLIB:
        return true;
#ifdef CONFIG_LZO
    case DUMP_DH_COMPRESSED_LZO:
        return true;
#endif
#ifdef CONFIG_SNAPPY
    case DUMP_DH_COMPRESSED_SNAPPY:
        return true;
#endif
#ifdef CONFIG_ZSTD
    case DUMP_DH_COMPRESSED_ZSTD:
        return true;
#endif
    default:
        return false;
    }
}

size_t dump_codec_bound(uint32_t flag, size_t page_size)
{
    switch (flag) {
    case DUMP_DH_COMPRESSED_ZLIB:
        return compressBound(page_size);
#ifdef CONFIG_LZO
    case DUMP_DH_COMPRESSED_LZO:
        /* LZO's documented worst case for incompressible input. */
        return page_size + page_size / 16 + 64 + 3;
#endif
#ifdef CONFIG_SNAPPY
    case DUMP_DH_COMPRESSED_SNAPPY:
        return snappy_max_compressed_length(page_size);
#endif
#ifdef CONFIG_ZSTD
    case DUMP_DH_COMPRESSED_ZSTD:
        return ZSTD_compressBound(page_size);
#endif
    default:
        return page_size;
    }
}

DumpCodec *dump_codec_new(uint32_t flag, size_t page_size, Error **errp)
{
    g_autofree DumpCodec *c = g_new0(DumpCodec, 1);

    if (!dump_codec_available(flag)) {
        error_setg(errp, "dump: compression 0x%x is not available in this build", flag);
        return NULL;
    }
    c->flag = flag;
    c->page_size = page_size;
    c->bound = dump_codec_bound(flag, page_size);
    switch (flag) {
    case DUMP_DH_COMPRESSED_ZLIB:
        /*
         * deflateInit(level 1) is what compress2(Z_BEST_SPEED) does inside;
         * reusing the state with deflateReset gives the same bytes without
         * allocating 256 KiB of deflate state per page.
         */
        if (deflateInit(&c->zs, Z_BEST_SPEED) != Z_OK) {
            error_setg(errp, "dump: failed to initialize zlib");
            return NULL;
        }
        c->zs_ready = true;
        break;
#ifdef CONFIG_LZO
    case DUMP_DH_COMPRESSED_LZO:
        if (lzo_init() != LZO_E_OK) {
            error_setg(errp, "dump: failed to initialize lzo");
            return NULL;
        }
        c->lzo_wrkmem = g_malloc(LZO1X_1_MEM_COMPRESS);
        break;
#endif
#ifdef CONFIG_ZSTD
    case DUMP_DH_COMPRESSED_ZSTD:
        c->zctx = ZSTD_createCCtx();
        if (!c->zctx) {
            error_setg(errp, "dump: failed to initialize zstd");
            return NULL;
        }
        break;
#endif
    default:
        break;
    }
    return g_steal_pointer(&c);
}

/*
 * Deciding "stored as it is" without running deflate, exactly.
 *
 * QEMU stores a page raw when compress2(level 1) does not make it strictly
 * smaller than 4096 bytes. For a page in which no three-byte sequence
 * occurs twice, deflate cannot find a match (it needs three equal bytes),
 * so its one block holds 4096 literals and an end code. Its size is then
 * at least that of the cheapest of zlib's three block types:
 *  - stored: 4096 bytes of data plus 5 of block header;
 *  - fixed codes: at least 8 bits per literal;
 *  - dynamic codes: the literal bits are at least 4096 x H (H the entropy
 *    of the page's bytes: a prefix code cannot beat it), plus the end code
 *    (>= 1 bit), block type (3), HLIT/HDIST/HCLEN (14), at least four
 *    3-bit code-length-code lengths (12), and the 257 literal/end code
 *    lengths, which are all non-zero when every byte value occurs; a run
 *    of equal lengths costs at least 1 + 3 bits per 7 of them, so >= 128.
 * With the 2-byte zlib header and the 4-byte Adler-32, the output reaches
 * 4096 bytes whenever 4096 x H >= 32555 bits, i.e. when
 * sum(f log2 f) <= 49152 - 32555 over the byte counts f; we keep 8 bits of
 * margin for rounding. About half of all random pages qualify, and deflate
 * is the costliest part of kdump-zlib (tests: /kdump/codec/zlib-shortcut).
 */
#define ZLIB_SHORTCUT_MAX_FLOGF (49152.0 - 32555.0 - 8.0)
#define ZLIB_SEEN_BITS 13

static double flogf_table[4097];

/* log2 of a positive integer without libm: 2^k times m in [1, 2), atanh series. */
static double int_log2(unsigned v)
{
    int k = 0;
    double m, y, y2, term, sum = 0;

    while (v >= 2u << k) {
        k++;
    }
    m = (double)v / (double)(1u << k);
    y = (m - 1) / (m + 1);          /* <= 1/3, so 30 terms are far beyond double */
    y2 = y * y;
    term = y;
    for (int n = 1; n < 60; n += 2) {
        sum += term / n;
        term *= y2;
    }
    return k + 2 * sum / 0.69314718055994530942;
}

static gpointer flogf_init(gpointer unused)
{
    for (unsigned f = 1; f <= 4096; f++) {
        flogf_table[f] = f * int_log2(f);
    }
    return NULL;
}

bool dump_zlib_cannot_shrink(DumpCodec *c, const uint8_t *p)
{
    static GOnce once = G_ONCE_INIT;
    uint32_t hist[256] = { 0 };
    double sum = 0;
    uint32_t tag;

    if (c->page_size != 4096) {
        return false;
    }
    /*
     * Only a speed filter (a "no" just means deflate runs): text has no
     * high bytes, random data has them in half its bytes.
     */
    for (int i = 0, high = 0; i < 4096; i += 64) {
        high += p[i] >> 7;
        if (i == 4032 && high < 20) {
            return false;
        }
    }
    g_once(&once, flogf_init, NULL);
    for (int i = 0; i < 4096; i++) {
        hist[p[i]]++;
    }
    for (int b = 0; b < 256; b++) {
        if (!hist[b]) {
            return false;
        }
        sum += flogf_table[hist[b]];
    }
    if (sum > ZLIB_SHORTCUT_MAX_FLOGF) {
        return false;
    }
    /* Entries of older pages carry another generation and count as empty. */
    if (!c->seen) {
        c->seen = g_new0(uint32_t, 1u << ZLIB_SEEN_BITS);
    }
    if (++c->seen_gen == 256) {
        memset(c->seen, 0, sizeof(uint32_t) << ZLIB_SEEN_BITS);
        c->seen_gen = 1;
    }
    tag = c->seen_gen << 24;
    for (int i = 0; i + 2 < 4096; i++) {
        uint32_t key = p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16;
        uint32_t h = (key * 0x9E3779B1u) >> (32 - ZLIB_SEEN_BITS);

        for (;;) {
            uint32_t e = c->seen[h];

            if ((e & 0xff000000u) != tag) {
                c->seen[h] = tag | key;
                break;
            }
            if ((e & 0xffffffu) == key) {
                return false;
            }
            h = (h + 1) & ((1u << ZLIB_SEEN_BITS) - 1);
        }
    }
    return true;
}

size_t dump_codec_compress(DumpCodec *c, const uint8_t *page, uint8_t *out)
{
    size_t len = 0;

    switch (c->flag) {
    case DUMP_DH_COMPRESSED_ZLIB:
        if (dump_zlib_cannot_shrink(c, page) || deflateReset(&c->zs) != Z_OK) {
            return 0;
        }
        c->zs.next_in = (Bytef *)page;
        c->zs.avail_in = c->page_size;
        c->zs.next_out = out;
        c->zs.avail_out = c->bound;
        if (deflate(&c->zs, Z_FINISH) != Z_STREAM_END) {
            return 0;
        }
        len = c->zs.total_out;
        break;
#ifdef CONFIG_LZO
    case DUMP_DH_COMPRESSED_LZO: {
        lzo_uint l = c->bound;

        if (lzo1x_1_compress(page, c->page_size, out, &l, c->lzo_wrkmem) != LZO_E_OK) {
            return 0;
        }
        len = l;
        break;
    }
#endif
#ifdef CONFIG_SNAPPY
    case DUMP_DH_COMPRESSED_SNAPPY:
        len = c->bound;
        if (snappy_compress((const char *)page, c->page_size, (char *)out,
                            &len) != SNAPPY_OK) {
            return 0;
        }
        break;
#endif
#ifdef CONFIG_ZSTD
    case DUMP_DH_COMPRESSED_ZSTD:
        len = ZSTD_compressCCtx(c->zctx, out, c->bound, page, c->page_size,
                                DUMP_ZSTD_LEVEL);
        if (ZSTD_isError(len)) {
            return 0;
        }
        break;
#endif
    default:
        return 0;
    }
    return len < c->page_size ? len : 0;
}

void dump_codec_free(DumpCodec *c)
{
    if (!c) {
        return;
    }
    if (c->zs_ready) {
        deflateEnd(&c->zs);
    }
    g_free(c->lzo_wrkmem);
    g_free(c->seen);
#ifdef CONFIG_ZSTD
    ZSTD_freeCCtx(c->zctx);
#endif
    g_free(c);
}

/* Unaligned, aliasing-safe 64-bit loads; the compiler turns the loop into vector ORs. */
typedef uint64_t __attribute__((may_alias, aligned(1))) UnalignedU64;

bool dump_page_is_zero(const void *page, size_t len)
{
    const uint8_t *p = page;
    size_t i = 0;

    /* The first word settles most non-zero pages without touching the rest. */
    if (len >= 8 && *(const UnalignedU64 *)p) {
        return false;
    }
    for (; i + 64 <= len; i += 64) {
        const UnalignedU64 *w = (const UnalignedU64 *)(p + i);

        if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) {
            return false;
        }
    }
    for (; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------- */

uint8_t *dump_page_batch_scratch(DumpPageBatch *b)
{
    uint8_t *page;

    /* Mid-page block edges are rare, so the scratch area is made on first use. */
    if (!b->scratch) {
        b->scratch = g_malloc(b->capacity * b->page_size);
    }
    g_assert(b->scratch_used < b->capacity);
    page = b->scratch + b->scratch_used * b->page_size;
    b->scratch_used++;
    memset(page, 0, b->page_size);
    return page;
}

const uint8_t *dump_page_batch_data(const DumpPageBatch *b, size_t i)
{
    if (b->kind[i] == DUMP_PAGE_COMPRESSED) {
        return b->out + i * b->bound;
    }
    return b->src[i];
}

/* Stops early (the batch is then garbage) once *abandon is set. */
static void batch_compress(DumpCodec *c, DumpPageBatch *b,
                           const atomic_bool *abandon)
{
    for (size_t i = 0; i < b->count; i++) {
        const uint8_t *src = b->src[i];
        size_t n;

        if (atomic_load_explicit(abandon, memory_order_relaxed)) {
            return;
        }
        if (dump_page_is_zero(src, b->page_size)) {
            b->kind[i] = DUMP_PAGE_ZERO;
            b->len[i] = 0;
            continue;
        }
        n = dump_codec_compress(c, src, b->out + i * b->bound);
        if (n) {
            b->kind[i] = DUMP_PAGE_COMPRESSED;
            b->len[i] = n;
        } else {
            b->kind[i] = DUMP_PAGE_RAW;
            b->len[i] = b->page_size;
        }
    }
}

static DumpPageBatch *batch_new(size_t capacity, size_t page_size, size_t bound)
{
    DumpPageBatch *b = g_new0(DumpPageBatch, 1);

    b->capacity = capacity;
    b->page_size = page_size;
    b->bound = bound;
    b->src = g_new(const uint8_t *, capacity);
    b->kind = g_new(uint8_t, capacity);
    b->len = g_new(uint32_t, capacity);
    /* The one large buffer: a failure ends the dump, not the host. */
    b->out = g_try_malloc(capacity * bound);
    if (!b->out) {
        g_free(b->src);
        g_free(b->kind);
        g_free(b->len);
        g_free(b);
        return NULL;
    }
    return b;
}

static void batch_free(DumpPageBatch *b)
{
    g_free(b->src);
    g_free(b->kind);
    g_free(b->len);
    g_free(b->out);
    g_free(b->scratch);
    g_free(b);
}

typedef struct DumpPool {
    GAsyncQueue *jobs;
    GMutex lock;
    GCond cond;
    /*
     * Set after a failure (a cancelled dump's write, for one): the batches
     * still in flight are only waited for, so workers drop them at once
     * instead of compressing pages nobody will write.
     */
    atomic_bool abandon;
} DumpPool;

typedef struct DumpWorker {
    DumpPool *pool;
    DumpCodec *codec;
    GThread *thread;
} DumpWorker;

/* Pushed once per worker to end it; never a real batch. */
static DumpPageBatch pool_stop;

static gpointer worker_main(gpointer opaque)
{
    DumpWorker *w = opaque;

    for (;;) {
        DumpPageBatch *b = g_async_queue_pop(w->pool->jobs);

        if (b == &pool_stop) {
            return NULL;
        }
        batch_compress(w->codec, b, &w->pool->abandon);
        g_mutex_lock(&w->pool->lock);
        b->done = true;
        g_cond_broadcast(&w->pool->cond);
        g_mutex_unlock(&w->pool->lock);
    }
}

bool dump_compress_pages(uint32_t flag, size_t page_size, int threads,
                         size_t batch_pages, DumpPageFillFn fill,
                         DumpPageConsumeFn consume, void *opaque, Error **errp)
{
    size_t bound = dump_codec_bound(flag, page_size);
    DumpPool pool = { 0 };
    g_autofree DumpWorker *workers = NULL;
    int nworkers = threads > 1 ? MIN(threads, DUMP_MAX_WORKERS) : 0;
    /* Two batches per worker: one being compressed while one waits its turn. */
    int nbatches = nworkers ? 2 * nworkers : 1;
    DumpCodec *inline_codec = NULL;
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(
        (GDestroyNotify)batch_free);
    GQueue free_q = G_QUEUE_INIT, busy_q = G_QUEUE_INIT;
    bool ok = true, eof = false;
    int started = 0;

    if (batch_pages == 0 || page_size == 0) {
        error_setg(errp, "dump: invalid page batch");
        return false;
    }
    workers = g_new0(DumpWorker, nworkers);
    if (nworkers == 0) {
        inline_codec = dump_codec_new(flag, page_size, errp);
        if (!inline_codec) {
            return false;
        }
    } else {
        pool.jobs = g_async_queue_new();
        g_mutex_init(&pool.lock);
        g_cond_init(&pool.cond);
        for (int i = 0; i < nworkers; i++) {
            workers[i].pool = &pool;
            workers[i].codec = dump_codec_new(flag, page_size, errp);
            if (!workers[i].codec) {
                ok = false;
                break;
            }
        }
        for (int i = 0; ok && i < nworkers; i++) {
            g_autoptr(GError) gerr = NULL;

            workers[i].thread = g_thread_try_new("dump-compress", worker_main,
                                                 &workers[i], &gerr);
            if (!workers[i].thread) {
                error_setg(errp, "dump: cannot start a compression thread: %s",
                           gerr->message);
                ok = false;
                break;
            }
            started++;
        }
    }
    for (int i = 0; ok && i < nbatches; i++) {
        DumpPageBatch *b = batch_new(batch_pages, page_size, bound);

        if (!b) {
            error_setg(errp, "dump: cannot allocate %zu bytes for compression",
                       batch_pages * bound);
            ok = false;
            break;
        }
        g_ptr_array_add(all, b);
        g_queue_push_tail(&free_q, b);
    }

    while (ok || !g_queue_is_empty(&busy_q)) {
        DumpPageBatch *b;

        while (ok && !eof && !g_queue_is_empty(&free_q)) {
            b = g_queue_pop_head(&free_q);
            b->count = 0;
            b->scratch_used = 0;
            b->done = false;
            if (!fill(opaque, b, errp)) {
                ok = false;
                g_queue_push_tail(&free_q, b);
                break;
            }
            if (b->count == 0) {
                eof = true;
                g_queue_push_tail(&free_q, b);
                break;
            }
            g_queue_push_tail(&busy_q, b);
            if (nworkers) {
                g_async_queue_push(pool.jobs, b);
            } else {
                batch_compress(inline_codec, b, &pool.abandon);
                b->done = true;
            }
        }
        b = g_queue_pop_head(&busy_q);
        if (!b) {
            break;
        }
        if (!ok) {
            atomic_store(&pool.abandon, true);
        }
        if (nworkers) {
            g_mutex_lock(&pool.lock);
            while (!b->done) {
                g_cond_wait(&pool.cond, &pool.lock);
            }
            g_mutex_unlock(&pool.lock);
        }
        /*
         * After a failure the batches in flight are only waited for, so no
         * worker is left touching memory that is about to be freed.
         */
        if (ok && !consume(opaque, b, errp)) {
            ok = false;
        }
        if (!ok) {
            atomic_store(&pool.abandon, true);
        }
        g_queue_push_tail(&free_q, b);
    }

    for (int i = 0; i < started; i++) {
        g_async_queue_push(pool.jobs, &pool_stop);
    }
    for (int i = 0; i < started; i++) {
        g_thread_join(workers[i].thread);
    }
    for (int i = 0; i < nworkers; i++) {
        dump_codec_free(workers[i].codec);
    }
    dump_codec_free(inline_codec);
    if (pool.jobs) {
        g_async_queue_unref(pool.jobs);
        g_mutex_clear(&pool.lock);
        g_cond_clear(&pool.cond);
    }
    g_queue_clear(&free_q);
    return ok;
}
