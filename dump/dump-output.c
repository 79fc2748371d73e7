/* Dump output sinks: plain fd (sequential or positioned) and the flattened stream. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dump/dump-compress.h"
#include "sysemu/dump-core.h"

/* makedumpfile's flattened format (IMPLEMENTATION, "-F"). */
#define FLAT_HEADER_SIZE 4096
#define FLAT_SIGNATURE "makedumpfile"
#define FLAT_TYPE_HEADER 1
#define FLAT_VERSION_HEADER 1

/*
 * Sparse output: all-zero runs of whole, file-aligned HOLE_BLOCKs in a
 * sequential write are skipped and left as holes. Page-sized holes cost
 * more than they save: on ext4 a 2 GiB demo-mix ELF (short zero runs) took
 * 0.8 s with 4 KiB holes against 0.4 s written in full (tens of thousands
 * of extents and partial blocks). With 1 MiB blocks such RAM has no holes,
 * and the zero test of a block stops at its first non-zero word, a few
 * pages in; large zero areas (untouched RAM) still become holes.
 */
#define HOLE_BLOCK (1u << 20)

/*
 * Into a pipe, zero runs of at least ZERO_SPLICE bytes are vmspliced from a
 * read-only zero mapping instead of copied: the pipe then holds references
 * to the zero page, and only the reader copies. Guest RAM itself is never
 * spliced, since its pages could change before the reader gets them.
 */
#define ZERO_SPLICE (64u << 10)
#define ZERO_REGION (1u << 20)

struct DumpOutput {
    int fd;
    bool seekable;
    bool pipe;
    /*
     * A sequential sink on a regular file that was empty at offset 0 (what
     * file: gets after O_CREAT or O_TRUNC): nothing can be under a hole, so
     * skipped zeros read back as the zeros they were. Writes are then
     * pwrites at pos, and finish extends the file over a trailing hole and
     * leaves the fd offset at the end, where sequential writes would have.
     */
    bool sparse;
    /* Flattened: records go to stream; fd is -1. */
    DumpOutput *stream;
    /* Flattened: the flat header is still to be written (dump_output_start). */
    bool header_pending;
    /* Logical position of the next dump_output_write(). */
    uint64_t pos;
    atomic_bool *cancel;
    /* Readable once the dump is cancelled (dump_output_set_cancel), or -1. */
    int cancel_fd;
    /*
     * A pipe or socket that the sink made non-blocking itself: a full one
     * is waited for with poll(), which a cancel interrupts. restore_flags
     * are its file status flags before, put back before the fd is closed
     * (the open file description may be shared with the client).
     */
    bool waits;
    int restore_flags;
};

/* Larger pipes are of no further use: the writer then runs a 1 MiB write ahead. */
#define PIPE_SIZE_WANTED (1 << 20)

/* What an unprivileged process may ask for, capped at PIPE_SIZE_WANTED. */
static int pipe_size_limit(void)
{
    FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
    long max = 0;

    if (f) {
        if (fscanf(f, "%ld", &max) != 1) {
            max = 0;
        }
        fclose(f);
    }
    return max > 0 ? (int)MIN(max, (long)PIPE_SIZE_WANTED) : 0;
}

/*
 * A 64 KiB pipe makes writer and reader switch every few 16 KiB records, and
 * on two cores that context-switching costs more than the dump's own work;
 * 1 MiB lets each side run for a while (docs/performance.md). Never shrinks
 * a pipe the client made bigger; a refusal (per-user pipe quota) is fine.
 */
static bool enlarge_pipe(int fd)
{
    struct stat st;
    int cur, want;

    if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
        return false;
    }
    cur = fcntl(fd, F_GETPIPE_SZ);
    want = pipe_size_limit();
    if (cur >= 0 && want > cur) {
        (void)fcntl(fd, F_SETPIPE_SZ, want);
    }
    return true;
}

/* See DumpOutput.sparse. O_APPEND would ignore the offsets we write at. */
static bool can_leave_holes(int fd)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);

    return fl >= 0 && !(fl & O_APPEND) && fstat(fd, &st) == 0 &&
           S_ISREG(st.st_mode) && st.st_size == 0 && lseek(fd, 0, SEEK_CUR) == 0;
}

/*
 * A write to a full pipe or socket blocks until the reader makes room,
 * which a reader that stopped never does; cancel must still end the dump.
 * So such a sink writes non-blocking and waits in poll() for room or for
 * the cancel fd. A client that handed over an already non-blocking fd gets
 * QEMU's behaviour: EAGAIN fails the dump.
 */
static void make_waitable(DumpOutput *out)
{
    struct stat st;
    int fl;

    if (fstat(out->fd, &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        return;
    }
    fl = fcntl(out->fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK) ||
        fcntl(out->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return;
    }
    out->waits = true;
    out->restore_flags = fl;
}

DumpOutput *dump_output_new_fd(int fd, bool seekable)
{
    DumpOutput *out = g_new0(DumpOutput, 1);

    out->fd = fd;
    out->seekable = seekable;
    out->cancel_fd = -1;
    if (!seekable && fd >= 0) {
        out->pipe = enlarge_pipe(fd);
        out->sparse = can_leave_holes(fd);
        make_waitable(out);
    }
    return out;
}

void dump_output_set_cancel(DumpOutput *out, atomic_bool *cancel, int cancel_fd)
{
    out->cancel = cancel;
    out->cancel_fd = cancel_fd;
    if (out->stream) {
        dump_output_set_cancel(out->stream, cancel, cancel_fd);
    }
}

static bool cancelled(const DumpOutput *out)
{
    if (out->cancel && atomic_load(out->cancel)) {
        errno = ECANCELED;
        return true;
    }
    return false;
}

/* EINTR: retry, unless the dump is being cancelled. */
static bool retry_eintr(const DumpOutput *out)
{
    return !cancelled(out);
}

/*
 * After EAGAIN: true once the fd has room (or an error the next write will
 * report), false with ECANCELED when the dump is cancelled meanwhile. No
 * cancel fd (a dump in the monitor, which only a signal ends, or no eventfd
 * could be made): the flag is looked at every 100 ms.
 */
static bool wait_writable(const DumpOutput *out)
{
    if (!out->waits) {
        return false;               /* the client's own non-blocking fd */
    }
    for (;;) {
        struct pollfd p[2] = {
            { .fd = out->fd, .events = POLLOUT },
            { .fd = out->cancel_fd, .events = POLLIN },
        };
        int n;

        if (cancelled(out)) {
            return false;
        }
        n = poll(p, 2, out->cancel_fd >= 0 ? -1 : 100);
        if (cancelled(out)) {
            return false;
        }
        if (n < 0 && errno != EINTR) {
            return false;
        }
        if (n > 0 && p[0].revents) {
            return true;
        }
    }
}

/* Puts back the client's file status flags before the fd goes. */
static void restore_fd_flags(const DumpOutput *out)
{
    if (out->waits) {
        (void)fcntl(out->fd, F_SETFL, out->restore_flags);
    }
}

bool dump_output_is_seekable(const DumpOutput *out)
{
    return out->seekable;
}

/*
 * Retries EINTR and short writes; EAGAIN fails as in QEMU (a non-blocking fd
 * would otherwise spin). A write returning 0 is reported as ENOSPC so that
 * the caller never sees errno 0 in its message.
 */
static bool write_all_vec(const DumpOutput *out, struct iovec *iov, int iovcnt)
{
    for (;;) {
        ssize_t n;

        /* Empty pieces (no CPU notes with -M none) would read as "wrote 0". */
        while (iovcnt > 0 && iov->iov_len == 0) {
            iov++;
            iovcnt--;
        }
        if (iovcnt == 0) {
            return true;
        }
        n = writev(out->fd, iov, iovcnt);

        if (n < 0) {
            if (errno == EINTR && retry_eintr(out)) {
                continue;
            }
            if (errno == EAGAIN && wait_writable(out)) {
                continue;
            }
            return false;
        }
        if (n == 0) {
            errno = ENOSPC;
            return false;
        }
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= n;
            /*
             * A short non-blocking write filled the pipe or socket: wait
             * for room now rather than learn it from an EAGAIN.
             */
            if (out->waits && !wait_writable(out)) {
                return false;
            }
        }
    }
}

static bool pwrite_all(const DumpOutput *out, const uint8_t *buf, size_t len,
                       uint64_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite(out->fd, buf, len, (off_t)offset);

        if (n < 0) {
            if (errno == EINTR && retry_eintr(out)) {
                continue;
            }
            return false;
        }
        if (n == 0) {
            errno = ENOSPC;
            return false;
        }
        buf += n;
        len -= n;
        offset += n;
    }
    return true;
}

/* Writes buf at out->pos, leaving holes where whole file blocks are zero. */
static bool sparse_write(const DumpOutput *out, const uint8_t *buf, size_t len)
{
    uint64_t pos = out->pos;
    size_t data = 0;      /* start of the pending data run in buf */
    size_t i;

    if (len < HOLE_BLOCK) {
        return pwrite_all(out, buf, len, pos);
    }
    /* Up to the first block boundary of the file: always data. */
    i = MIN(len, (size_t)((HOLE_BLOCK - pos % HOLE_BLOCK) % HOLE_BLOCK));
    while (i + HOLE_BLOCK <= len) {
        size_t z = i;

        while (z + HOLE_BLOCK <= len && dump_page_is_zero(buf + z, HOLE_BLOCK)) {
            z += HOLE_BLOCK;
        }
        if (z == i) {
            i += HOLE_BLOCK;
            continue;
        }
        if (i > data && !pwrite_all(out, buf + data, i - data, pos + data)) {
            return false;
        }
        data = z;
        i = z;
    }
    return len == data || pwrite_all(out, buf + data, len - data, pos + data);
}

/* ZERO_REGION bytes of the zero page, mapped once, never writable. */
static const uint8_t *zero_region(void)
{
    static gsize once;
    static const uint8_t *zeros;

    if (g_once_init_enter(&once)) {
        void *p = mmap(NULL, ZERO_REGION, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        zeros = p == MAP_FAILED ? NULL : p;
        g_once_init_leave(&once, 1);
    }
    return zeros;
}

/* len zero bytes into the pipe; plain writes where vmsplice is refused. */
static bool pipe_zeros(const DumpOutput *out, size_t len)
{
    const uint8_t *zeros = zero_region();

    while (len > 0 && zeros) {
        struct iovec iov = { .iov_base = (void *)zeros,
                             .iov_len = MIN(len, (size_t)ZERO_REGION) };
        ssize_t n = vmsplice(out->fd, &iov, 1,
                             out->waits ? SPLICE_F_NONBLOCK : 0);

        if (n < 0) {
            if (errno == EINTR && retry_eintr(out)) {
                continue;
            }
            if (errno == EAGAIN && wait_writable(out)) {
                continue;
            }
            if (errno == EINVAL || errno == ENOSYS) {
                break;
            }
            return false;
        }
        len -= n;
    }
    while (len > 0) {
        static const uint8_t page[4096];
        size_t n = MIN(len, zeros ? (size_t)ZERO_REGION : sizeof(page));
        struct iovec iov = { .iov_base = (void *)(zeros ? zeros : page),
                             .iov_len = n };

        if (!write_all_vec(out, &iov, 1)) {
            return false;
        }
        len -= n;
    }
    return true;
}

/* Sequential write into a pipe: data copied, long zero runs spliced. */
static bool pipe_write(const DumpOutput *out, const uint8_t *buf, size_t len)
{
    size_t data = 0, i = 0;

    while (len >= ZERO_SPLICE && i + ZERO_SPLICE <= len) {
        size_t z = i;

        while (z + ZERO_SPLICE <= len && dump_page_is_zero(buf + z, ZERO_SPLICE)) {
            z += ZERO_SPLICE;
        }
        if (z == i) {
            i += ZERO_SPLICE;
            continue;
        }
        if (i > data) {
            struct iovec iov = { .iov_base = (void *)(buf + data),
                                 .iov_len = i - data };

            if (!write_all_vec(out, &iov, 1)) {
                return false;
            }
        }
        if (!pipe_zeros(out, z - i)) {
            return false;
        }
        data = i = z;
    }
    if (data < len) {
        struct iovec iov = { .iov_base = (void *)(buf + data), .iov_len = len - data };

        return write_all_vec(out, &iov, 1);
    }
    return true;
}

/* Makes a trailing hole part of the file and puts the offset at the end. */
static bool sparse_finish(const DumpOutput *out)
{
    struct stat st;

    if (fstat(out->fd, &st) < 0) {
        return false;
    }
    if ((uint64_t)st.st_size < out->pos) {
        while (ftruncate(out->fd, (off_t)out->pos) < 0) {
            if (errno != EINTR || !retry_eintr(out)) {
                return false;
            }
        }
    }
    return lseek(out->fd, (off_t)out->pos, SEEK_SET) >= 0;
}

/* Big-endian as the flat format wants it, whatever the dump's endianness. */
static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = v & 0xff;
        v >>= 8;
    }
}

static bool flat_record(DumpOutput *out, const void *buf, size_t len,
                        uint64_t offset)
{
    uint8_t hdr[16];
    struct iovec iov[2];

    if (len == 0) {
        return true;
    }
    if (!dump_output_start(out)) {
        return false;
    }
    put_be64(hdr, offset);
    put_be64(hdr + 8, len);
    /* One writev keeps header and data together; the byte stream is QEMU's. */
    iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
    iov[1] = (struct iovec){ .iov_base = (void *)buf, .iov_len = len };
    return write_all_vec(out->stream, iov, 2);
}

DumpOutput *dump_output_new_flattened(DumpOutput *stream, Error **errp)
{
    DumpOutput *out;

    /* Records are small and rarely zero; the stream stays as it was. */
    stream->sparse = false;
    out = g_new0(DumpOutput, 1);
    out->fd = -1;
    out->cancel_fd = -1;
    out->stream = stream;
    out->header_pending = true;
    /* Positioned writes are possible: each becomes a record. */
    out->seekable = true;
    return out;
}

/*
 * The flat header is written when the dump starts writing, not when the
 * sink is made: 7.2 fails a dump whose header write fails as a dump (an
 * event, and `{}` first when detached), not as a refused command.
 */
bool dump_output_start(DumpOutput *out)
{
    g_autofree uint8_t *hdr = NULL;
    struct iovec iov;

    if (!out->stream || !out->header_pending) {
        return true;
    }
    hdr = g_malloc0(FLAT_HEADER_SIZE);
    memcpy(hdr, FLAT_SIGNATURE, sizeof(FLAT_SIGNATURE));
    put_be64(hdr + 16, FLAT_TYPE_HEADER);
    put_be64(hdr + 24, FLAT_VERSION_HEADER);
    iov = (struct iovec){ .iov_base = hdr, .iov_len = FLAT_HEADER_SIZE };
    if (!write_all_vec(out->stream, &iov, 1)) {
        return false;
    }
    out->header_pending = false;
    return true;
}

bool dump_output_write(DumpOutput *out, const void *buf, size_t len)
{
    bool ok;

    if (out->stream) {
        ok = flat_record(out, buf, len, out->pos);
    } else if (out->sparse) {
        ok = sparse_write(out, buf, len);
    } else if (out->pipe) {
        ok = pipe_write(out, buf, len);
    } else {
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

        ok = write_all_vec(out, &iov, 1);
    }
    if (ok) {
        out->pos += len;
    }
    return ok;
}

bool dump_output_pwrite(DumpOutput *out, const void *buf, size_t len,
                        uint64_t offset)
{
    if (out->stream) {
        return flat_record(out, buf, len, offset);
    }
    g_assert(out->seekable);
    return pwrite_all(out, buf, len, offset);
}

bool dump_output_finish(DumpOutput *out)
{
    bool ok = true;
    int saved;

    if (out->stream) {
        uint8_t end[16];
        struct iovec iov = { .iov_base = end, .iov_len = sizeof(end) };

        memset(end, 0xff, sizeof(end));
        ok = dump_output_start(out) && write_all_vec(out->stream, &iov, 1);
        saved = errno;
        if (ok) {
            ok = dump_output_finish(out->stream);
            saved = errno;
        } else {
            dump_output_free(out->stream);
        }
        g_free(out);
        errno = saved;
        return ok;
    }
    if (out->sparse && !sparse_finish(out)) {
        ok = false;
    }
    saved = errno;
    restore_fd_flags(out);
    /* close() can be the first to report a deferred write error (NFS, EIO). */
    if (out->fd >= 0 && close(out->fd) < 0 && errno != EINTR && ok) {
        ok = false;
        saved = errno;
    }
    g_free(out);
    errno = saved;
    return ok;
}

void dump_output_free(DumpOutput *out)
{
    int saved = errno;

    if (!out) {
        return;
    }
    if (out->stream) {
        dump_output_free(out->stream);
    } else if (out->fd >= 0) {
        restore_fd_flags(out);
        close(out->fd);
    }
    g_free(out);
    errno = saved;
}
