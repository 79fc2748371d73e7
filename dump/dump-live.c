/* Live dumps: userfaultfd write-protection of guest RAM and the copy-on-write snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sysemu/dump-host.h"
#include "sysemu/dump-live.h"

#if defined(__linux__) && __has_include(<linux/userfaultfd.h>)
#define DUMP_LIVE_UFFD 1
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#endif

#define DUMP_LIVE_DEFAULT_COPY_PAGES 16384
#define DUMP_LIVE_MAX_COPY_PAGES (1u << 22)

size_t dump_live_copy_pages(void)
{
    const char *env = g_getenv("GUESTDUMP_LIVE_COPY_PAGES");

    if (env) {
        gint64 v = g_ascii_strtoll(env, NULL, 10);

        if (v >= 1 && v <= DUMP_LIVE_MAX_COPY_PAGES) {
            return (size_t)v;
        }
    }
    return DUMP_LIVE_DEFAULT_COPY_PAGES;
}

#ifdef DUMP_LIVE_UFFD

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* One registered run of host memory, whole host pages. */
typedef struct LiveRange {
    uintptr_t start;
    uintptr_t end;
    uint64_t gpa;                 /* of the first block in it, for messages */
    /* A bit per page: still protected and never copied, so RAM holds the snapshot. */
    unsigned long *in_ram;
} LiveRange;

struct DumpLive {
    int uffd;
    int stop_fd;
    int freed_fd;                 /* the dump freed slots: retry waiting faults */
    size_t page_size;
    LiveRange *ranges;
    size_t nranges;
    /*
     * Host memory that more than one block maps (QEMU's and guestdump's
     * isa-bios alias of pc.bios, any alias region): a writer that passed one
     * alias may still read the other, so these pages stay protected until
     * the end. Sorted by start; few.
     */
    LiveRange *aliased;
    size_t naliased;

    GMutex lock;
    uint8_t *slots;               /* nslots pages of old contents */
    size_t nslots;
    /*
     * Slots only the main thread may take: it serves the monitor (and, in
     * QEMU, holds the BQL), so a write of its own must not wait behind a
     * dump whose reader stalls, or no command (quit, cancel) could run.
     */
    size_t main_reserve;
    pid_t main_tid;
    uint32_t *free_slots;
    size_t nfree;
    GHashTable *copies;           /* host page address -> slot index + 1 */

    atomic_bool ended;
    GThread *handler;

    /* Statistics (under lock), for GUESTDUMP_LIVE_STATS. */
    uint64_t n_copies;
    uint64_t n_waits;
    uint64_t n_late_reads;
    size_t peak_used;
    int64_t protect_us;
};

#define BITS_PER_ULONG (8 * sizeof(unsigned long))

static bool bit_test(const unsigned long *map, size_t i)
{
    return map[i / BITS_PER_ULONG] & (1ul << (i % BITS_PER_ULONG));
}

static void bit_clear(unsigned long *map, size_t i)
{
    map[i / BITS_PER_ULONG] &= ~(1ul << (i % BITS_PER_ULONG));
}

static LiveRange *range_find(DumpLive *l, uintptr_t addr)
{
    size_t lo = 0, hi = l->nranges;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (l->ranges[mid].start <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0 || addr >= l->ranges[lo - 1].end) {
        return NULL;
    }
    return &l->ranges[lo - 1];
}

static bool page_aliased(DumpLive *l, uintptr_t page)
{
    for (size_t i = 0; i < l->naliased; i++) {
        if (page >= l->aliased[i].start && page < l->aliased[i].end) {
            return true;
        }
    }
    return false;
}

static int uffd_protect(DumpLive *l, uintptr_t start, uintptr_t len, bool wp)
{
    struct uffdio_writeprotect w = {
        .range = { .start = start, .len = len },
        .mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };

    return ioctl(l->uffd, UFFDIO_WRITEPROTECT, &w);
}

/* Lifts protection of [start, start+len) and wakes whoever waits on it. */
static void uffd_unprotect_wake(DumpLive *l, uintptr_t start, uintptr_t len)
{
    if (uffd_protect(l, start, len, false) < 0) {
        struct uffdio_range r = { .start = start, .len = len };

        ioctl(l->uffd, UFFDIO_WAKE, &r);
    }
}

/* A fault the handler could not serve yet: its writer waits for a free slot. */
typedef struct LiveFault {
    uintptr_t page;
    pid_t tid;
} LiveFault;

/*
 * A write to a protected page: keep its old contents, then let the writer
 * go. False, with nothing done, when it needs a slot and none is free for
 * this thread: the writer keeps waiting and the fault is tried again once
 * the dump frees slots. Never blocks, so one waiting writer does not hold
 * up the faults of others (the main thread's, served from its reserve).
 */
static bool live_try_fault(DumpLive *l, uintptr_t page, pid_t tid)
{
    size_t keep = tid == l->main_tid ? 0 : l->main_reserve;
    LiveRange *r;

    g_mutex_lock(&l->lock);
    r = range_find(l, page);
    if (r) {
        size_t idx = (page - r->start) / l->page_size;

        if (bit_test(r->in_ram, idx)) {
            uint32_t slot;

            if (l->nfree <= keep) {
                g_mutex_unlock(&l->lock);
                return false;
            }
            slot = l->free_slots[--l->nfree];
            memcpy(l->slots + (size_t)slot * l->page_size, (void *)page, l->page_size);
            g_hash_table_insert(l->copies, (gpointer)page,
                                GUINT_TO_POINTER(slot + 1));
            bit_clear(r->in_ram, idx);
            l->n_copies++;
            l->peak_used = MAX(l->peak_used, l->nslots - l->nfree);
        }
    }
    g_mutex_unlock(&l->lock);
    /* Only now may the page change: its copy (or its release) is recorded. */
    uffd_unprotect_wake(l, page, l->page_size);
    return true;
}

static gpointer live_handler(gpointer opaque)
{
    DumpLive *l = opaque;
    struct uffd_msg msgs[16];
    /* Bounded by the number of threads that can be stopped in a fault. */
    g_autoptr(GArray) waiting = g_array_new(FALSE, FALSE, sizeof(LiveFault));

    for (;;) {
        struct pollfd pfd[3] = {
            { .fd = l->uffd, .events = POLLIN },
            { .fd = l->stop_fd, .events = POLLIN },
            { .fd = l->freed_fd, .events = POLLIN },
        };
        ssize_t n;

        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pfd[1].revents) {
            break;
        }
        if (pfd[2].revents) {
            uint64_t v;

            if (read(l->freed_fd, &v, sizeof(v)) < 0) {
                /* EAGAIN: another wake-up already took it. */
            }
            for (guint i = 0; i < waiting->len;) {
                LiveFault *f = &g_array_index(waiting, LiveFault, i);

                if (live_try_fault(l, f->page, f->tid)) {
                    g_array_remove_index(waiting, i);
                } else {
                    i++;
                }
            }
        }
        if (!pfd[0].revents) {
            continue;
        }
        n = read(l->uffd, msgs, sizeof(msgs));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            break;
        }
        for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
            LiveFault f;

            if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
                continue;
            }
            f.page = (uintptr_t)msgs[i].arg.pagefault.address &
                     ~(uintptr_t)(l->page_size - 1);
            f.tid = (pid_t)msgs[i].arg.pagefault.feat.ptid;
            if (!live_try_fault(l, f.page, f.tid)) {
                /* Bounded memory: this writer waits until the dump frees a slot. */
                g_mutex_lock(&l->lock);
                l->n_waits++;
                g_mutex_unlock(&l->lock);
                g_array_append_val(waiting, f);
            }
        }
    }
    return NULL;
}

static int open_uffd(void)
{
    int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    int dev, saved;

    if (fd >= 0) {
        return fd;
    }
    /* Without the capability the syscall needs, the device may still be allowed. */
    saved = errno;
    dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        close(dev);
        if (fd >= 0) {
            return fd;
        }
    }
    errno = saved;
    return -1;
}

/* The userfaultfd handshake; *populate when unpopulated pages need mapping first. */
static int open_uffd_wp(bool *populate, Error **errp)
{
    bool want_unpop = !g_getenv("GUESTDUMP_LIVE_NO_WP_UNPOPULATED");

    for (;;) {
        struct uffdio_api api = { .api = UFFD_API };
        int fd = open_uffd();

        if (fd < 0) {
            error_setg_errno(errp, errno, "live dump: userfaultfd is not available "
                             "(needs CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 "
                             "or access to /dev/userfaultfd)");
            return -1;
        }
        api.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_THREAD_ID |
                       (want_unpop ? UFFD_FEATURE_WP_UNPOPULATED : 0);
        if (ioctl(fd, UFFDIO_API, &api) == 0 &&
            (api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
            *populate = !want_unpop;
            return fd;
        }
        close(fd);
        if (want_unpop) {
            /* Before Linux 6.4: protect populated pages, so populate them. */
            want_unpop = false;
            continue;
        }
        error_setg(errp, "live dump: this kernel cannot write-protect memory "
                   "with userfaultfd (UFFD_FEATURE_PAGEFAULT_FLAG_WP needs "
                   "Linux 5.7 or later)");
        return -1;
    }
}

static int cmp_range(const void *a, const void *b)
{
    const LiveRange *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* The blocks' host memory as sorted, merged runs of whole pages. */
static void live_build_ranges(DumpLive *l, const DumpGuestBlock *blocks, size_t num)
{
    uintptr_t mask = l->page_size - 1;
    size_t n = 0;

    l->ranges = g_new0(LiveRange, num ? num : 1);
    for (size_t i = 0; i < num; i++) {
        uintptr_t s = (uintptr_t)blocks[i].host_addr;
        uintptr_t len = blocks[i].target_end - blocks[i].target_start;

        if (!len) {
            continue;
        }
        l->ranges[n].start = s & ~mask;
        l->ranges[n].end = (s + len + mask) & ~mask;
        l->ranges[n].gpa = blocks[i].target_start;
        n++;
    }
    qsort(l->ranges, n, sizeof(LiveRange), cmp_range);
    l->aliased = g_new0(LiveRange, n ? n : 1);
    for (size_t i = 1, max_end = n ? l->ranges[0].end : 0; i < n; i++) {
        if (l->ranges[i].start < max_end) {
            l->aliased[l->naliased].start = l->ranges[i].start;
            l->aliased[l->naliased].end = MIN(l->ranges[i].end, max_end);
            l->naliased++;
        }
        max_end = MAX(max_end, l->ranges[i].end);
    }
    l->nranges = 0;
    for (size_t i = 0; i < n; i++) {
        LiveRange *last = l->nranges ? &l->ranges[l->nranges - 1] : NULL;

        if (last && l->ranges[i].start <= last->end) {
            last->end = MAX(last->end, l->ranges[i].end);
        } else {
            l->ranges[l->nranges++] = l->ranges[i];
        }
    }
    for (size_t i = 0; i < l->nranges; i++) {
        size_t pages = (l->ranges[i].end - l->ranges[i].start) / l->page_size;
        size_t words = (pages + BITS_PER_ULONG - 1) / BITS_PER_ULONG;

        l->ranges[i].in_ram = g_new(unsigned long, words);
        memset(l->ranges[i].in_ram, 0xff, words * sizeof(unsigned long));
    }
}

/* Undoes a partial start: unprotect and unregister the first n ranges. */
static void live_unregister(DumpLive *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct uffdio_range r = {
            .start = l->ranges[i].start,
            .len = l->ranges[i].end - l->ranges[i].start,
        };

        uffd_unprotect_wake(l, r.start, r.len);
        ioctl(l->uffd, UFFDIO_UNREGISTER, &r);
    }
}

static void live_free_struct(DumpLive *l)
{
    for (size_t i = 0; i < l->nranges; i++) {
        g_free(l->ranges[i].in_ram);
    }
    g_free(l->ranges);
    g_free(l->aliased);
    if (l->uffd >= 0) {
        close(l->uffd);
    }
    if (l->stop_fd >= 0) {
        close(l->stop_fd);
    }
    if (l->freed_fd >= 0) {
        close(l->freed_fd);
    }
    if (l->copies) {
        g_hash_table_destroy(l->copies);
    }
    g_free(l->free_slots);
    if (l->slots) {
        munmap(l->slots, l->nslots * l->page_size);
    }
    g_mutex_clear(&l->lock);
    g_free(l);
}

DumpLive *dump_live_start(const DumpGuestBlock *blocks, size_t num, Error **errp)
{
    DumpLive *l = g_new0(DumpLive, 1);
    int64_t t0 = g_get_monotonic_time();
    bool populate = false;
    size_t done = 0;

    l->uffd = -1;
    l->stop_fd = -1;
    l->page_size = (size_t)sysconf(_SC_PAGESIZE);
    l->freed_fd = -1;
    g_mutex_init(&l->lock);
    l->uffd = open_uffd_wp(&populate, errp);
    if (l->uffd < 0) {
        goto fail;
    }
    live_build_ranges(l, blocks, num);
    for (done = 0; done < l->nranges; done++) {
        LiveRange *r = &l->ranges[done];
        struct uffdio_register reg = {
            .range = { .start = r->start, .len = r->end - r->start },
            .mode = UFFDIO_REGISTER_MODE_WP,
        };

        if (populate && madvise((void *)r->start, r->end - r->start,
                                MADV_POPULATE_READ) < 0) {
            error_setg_errno(errp, errno, "live dump: guest RAM at guest-physical "
                             "0x%" PRIx64 " cannot be populated for write "
                             "protection (the kernel lacks "
                             "UFFD_FEATURE_WP_UNPOPULATED)", r->gpa);
            goto fail;
        }
        if (ioctl(l->uffd, UFFDIO_REGISTER, &reg) < 0) {
            error_setg_errno(errp, errno, "live dump: guest RAM at guest-physical "
                             "0x%" PRIx64 " (%" PRIu64 " bytes of host memory) "
                             "cannot be write-protected: its memory type refuses "
                             "userfaultfd registration", r->gpa,
                             (uint64_t)(r->end - r->start));
            goto fail;
        }
        if (!(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT))) {
            struct uffdio_range ur = reg.range;

            ioctl(l->uffd, UFFDIO_UNREGISTER, &ur);
            error_setg(errp, "live dump: guest RAM at guest-physical 0x%" PRIx64
                       " cannot be write-protected: the kernel does not "
                       "write-protect this memory type", r->gpa);
            goto fail;
        }
        if (uffd_protect(l, r->start, r->end - r->start, true) < 0) {
            error_setg_errno(errp, errno, "live dump: cannot write-protect guest "
                             "RAM at guest-physical 0x%" PRIx64, r->gpa);
            done++;
            goto fail;
        }
    }

    /* Called on the main thread: see main_reserve. */
    l->main_tid = (pid_t)syscall(SYS_gettid);
    l->main_reserve = MAX(64, dump_live_copy_pages() / 8);
    l->nslots = dump_live_copy_pages() + l->main_reserve;
    /* mmap: slots cost memory only once a page is copied into them. */
    l->slots = mmap(NULL, l->nslots * l->page_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (l->slots == MAP_FAILED) {
        l->slots = NULL;
        error_setg_errno(errp, errno, "live dump: cannot allocate the copy buffer");
        goto fail;
    }
    l->free_slots = g_new(uint32_t, l->nslots);
    for (size_t i = 0; i < l->nslots; i++) {
        l->free_slots[i] = (uint32_t)(l->nslots - 1 - i);
    }
    l->nfree = l->nslots;
    l->copies = g_hash_table_new(g_direct_hash, g_direct_equal);
    l->stop_fd = eventfd(0, EFD_CLOEXEC);
    l->freed_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->stop_fd < 0 || l->freed_fd < 0) {
        error_setg_errno(errp, errno, "live dump: eventfd");
        goto fail;
    }
    l->handler = g_thread_new("dump_live_wp", live_handler, l);
    l->protect_us = g_get_monotonic_time() - t0;
    return l;

fail:
    if (l->uffd >= 0) {
        live_unregister(l, done);
    }
    live_free_struct(l);
    return NULL;
}

void dump_live_read(DumpLive *l, const uint8_t *host, void *buf, size_t len)
{
    uint8_t *out = buf;

    g_mutex_lock(&l->lock);
    while (len) {
        uintptr_t addr = (uintptr_t)host;
        uintptr_t page = addr & ~(uintptr_t)(l->page_size - 1);
        size_t off = addr - page;
        size_t n = MIN(len, l->page_size - off);
        LiveRange *r = range_find(l, page);
        gpointer slot = NULL;

        if (!(r && bit_test(r->in_ram, (page - r->start) / l->page_size)) &&
            g_hash_table_size(l->copies)) {
            slot = g_hash_table_lookup(l->copies, (gpointer)page);
        }
        if (slot) {
            memcpy(out, l->slots + (GPOINTER_TO_UINT(slot) - 1) * l->page_size + off,
                   n);
        } else {
            if (!(r && bit_test(r->in_ram, (page - r->start) / l->page_size))) {
                /* Released already, or after the end: a writer's bug. */
                l->n_late_reads++;
            }
            memcpy(out, host, n);
        }
        out += n;
        host += n;
        len -= n;
        if (len && ((uintptr_t)host & (64 * l->page_size - 1)) == 0) {
            /* Each page is checked and copied under the lock; writers get a turn. */
            g_mutex_unlock(&l->lock);
            g_mutex_lock(&l->lock);
        }
    }
    g_mutex_unlock(&l->lock);
}

void dump_live_release(DumpLive *l, const uint8_t *host, size_t len)
{
    uintptr_t mask = l->page_size - 1;
    uintptr_t from = ((uintptr_t)host + mask) & ~mask;
    uintptr_t to = ((uintptr_t)host + len) & ~mask;
    bool freed = false;

    if (from >= to || atomic_load(&l->ended)) {
        return;
    }
    g_mutex_lock(&l->lock);
    for (uintptr_t page = from; page < to; page += l->page_size) {
        LiveRange *r = range_find(l, page);
        size_t idx;
        gpointer slot;

        if (!r) {
            continue;
        }
        if (l->naliased && page_aliased(l, page)) {
            continue;
        }
        idx = (page - r->start) / l->page_size;
        if (bit_test(r->in_ram, idx)) {
            bit_clear(r->in_ram, idx);
        } else if (g_hash_table_size(l->copies) &&
                   (slot = g_hash_table_lookup(l->copies, (gpointer)page))) {
            g_hash_table_remove(l->copies, (gpointer)page);
            l->free_slots[l->nfree++] = GPOINTER_TO_UINT(slot) - 1;
            freed = true;
        }
    }
    g_mutex_unlock(&l->lock);
    if (freed) {
        uint64_t one = 1;

        if (write(l->freed_fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is saturated, a wake-up is pending anyway. */
        }
    }
    /* Outside the lock: a writer faulting meanwhile finds the page released. */
    for (size_t i = 0; i < l->nranges; i++) {
        uintptr_t s = MAX(from, l->ranges[i].start);
        uintptr_t e = MIN(to, l->ranges[i].end);

        for (size_t j = 0; j < l->naliased && s < e; j++) {
            const LiveRange *a = &l->aliased[j];

            if (a->end <= s) {
                continue;
            }
            if (a->start >= e) {
                break;
            }
            if (a->start > s) {
                uffd_unprotect_wake(l, s, a->start - s);
            }
            s = MAX(s, a->end);
        }
        if (s < e) {
            uffd_unprotect_wake(l, s, e - s);
        }
    }
}

void dump_live_end(DumpLive *l)
{
    uint64_t one = 1;

    if (!l || atomic_exchange(&l->ended, true)) {
        return;
    }
    /* Unprotecting wakes every writer waiting on these pages. */
    for (size_t i = 0; i < l->nranges; i++) {
        uffd_unprotect_wake(l, l->ranges[i].start,
                            l->ranges[i].end - l->ranges[i].start);
    }
    if (write(l->stop_fd, &one, sizeof(one)) != sizeof(one)) {
        /* An eventfd write of 1 cannot fail short of a bad fd. */
        g_assert_not_reached();
    }
    g_thread_join(l->handler);
    l->handler = NULL;
    for (size_t i = 0; i < l->nranges; i++) {
        struct uffdio_range r = {
            .start = l->ranges[i].start,
            .len = l->ranges[i].end - l->ranges[i].start,
        };

        ioctl(l->uffd, UFFDIO_UNREGISTER, &r);
    }
}

/* GUESTDUMP_LIVE_STATS=FILE: one JSON line per live dump, for tests and benchmarks. */
static void live_write_stats(DumpLive *l)
{
    const char *path = g_getenv("GUESTDUMP_LIVE_STATS");
    FILE *f;

    if (!path || !(f = fopen(path, "a"))) {
        return;
    }
    fprintf(f, "{\"copies\": %" PRIu64 ", \"waits\": %" PRIu64 ", \"peak\": %zu, "
            "\"slots\": %zu, \"main_reserve\": %zu, \"late_reads\": %" PRIu64
            ", \"protect_us\": %" PRId64 "}\n", l->n_copies, l->n_waits,
            l->peak_used, l->nslots - l->main_reserve, l->main_reserve,
            l->n_late_reads, l->protect_us);
    fclose(f);
}

void dump_live_free(DumpLive *l)
{
    if (!l) {
        return;
    }
    dump_live_end(l);
    live_write_stats(l);
    live_free_struct(l);
}

#else /* !DUMP_LIVE_UFFD */

struct DumpLive {
    int unused;
};

DumpLive *dump_live_start(const DumpGuestBlock *blocks, size_t num, Error **errp)
{
    error_setg(errp, "live dump: write protection of guest RAM needs Linux's "
               "userfaultfd, which this build does not have");
    return NULL;
}

void dump_live_read(DumpLive *l, const uint8_t *host, void *buf, size_t len)
{
    memcpy(buf, host, len);
}

void dump_live_release(DumpLive *l, const uint8_t *host, size_t len)
{
}

void dump_live_end(DumpLive *l)
{
}

void dump_live_free(DumpLive *l)
{
}

#endif
