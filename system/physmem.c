/* The guest-physical memory map: sorted RAM/ROM blocks over anonymous mmap memory. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "sysemu/physmem.h"
#include "system/machine-internal.h"

/* A block plus whether physmem owns (and must unmap) its host memory. */
typedef struct PhysBlock {
    RAMBlock rb;
    bool owned;
} PhysBlock;

/*
 * Sorted by gpa. Elements are separately allocated so the RAMBlock pointers
 * handed out stay valid while other blocks are added.
 */
static GPtrArray *blocks;

/* Host memory from physmem_alloc_ram(), shared by blocks; unmapped at reset. */
typedef struct Arena {
    uint8_t *host;
    uint64_t size;
    bool file;                  /* physmem_map_file */
} Arena;
static GArray *arenas;
/* Guest RAM was written through physmem: file-mapped RAM may hold private pages. */
static bool ram_written;

/*
 * The last block hit: guest accesses (qtest, page walks) cluster strongly,
 * so this turns most lookups into one comparison. A dump thread looks up
 * blocks while the main loop serves qtest, hence the relaxed atomics; any
 * value read is only a hint and is range-checked.
 */
static size_t last_hit;

static GPtrArray *block_array(void)
{
    if (!blocks) {
        blocks = g_ptr_array_new();
    }
    return blocks;
}

static PhysBlock *block_at(size_t index)
{
    return g_ptr_array_index(blocks, index);
}

size_t physmem_block_count(void)
{
    return blocks ? blocks->len : 0;
}

const RAMBlock *physmem_block(size_t index)
{
    if (index >= physmem_block_count()) {
        return NULL;
    }
    return &block_at(index)->rb;
}

static bool block_contains(const RAMBlock *rb, uint64_t gpa)
{
    return gpa >= rb->gpa && gpa - rb->gpa < rb->size;
}

static PhysBlock *find_block(uint64_t gpa)
{
    size_t n = physmem_block_count();
    size_t lo = 0, hi = n;
    size_t hint = __atomic_load_n(&last_hit, __ATOMIC_RELAXED);

    if (hint < n) {
        PhysBlock *pb = block_at(hint);
        if (block_contains(&pb->rb, gpa)) {
            return pb;
        }
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        PhysBlock *pb = block_at(mid);
        if (gpa < pb->rb.gpa) {
            hi = mid;
        } else if (gpa - pb->rb.gpa >= pb->rb.size) {
            lo = mid + 1;
        } else {
            __atomic_store_n(&last_hit, mid, __ATOMIC_RELAXED);
            return pb;
        }
    }
    return NULL;
}

const RAMBlock *physmem_find(uint64_t gpa)
{
    PhysBlock *pb = find_block(gpa);
    return pb ? &pb->rb : NULL;
}

/* Walks [gpa, gpa+len) block by block; false if any byte is not RAM/ROM. */
static bool range_is_ram(uint64_t gpa, uint64_t len, bool need_writable)
{
    if (len == 0) {
        return true;
    }
    if (gpa + len < gpa) {
        return false;
    }
    while (len > 0) {
        PhysBlock *pb = find_block(gpa);
        uint64_t avail;

        if (!pb || (need_writable && pb->rb.readonly)) {
            return false;
        }
        avail = pb->rb.size - (gpa - pb->rb.gpa);
        if (avail >= len) {
            return true;
        }
        gpa += avail;
        len -= avail;
    }
    return true;
}

bool physmem_is_ram(uint64_t gpa, uint64_t len)
{
    return range_is_ram(gpa, len, false);
}

static void outside_ram(Error **errp, uint64_t gpa, uint64_t len)
{
    error_setg(errp, "guest-physical range 0x%llx+0x%llx is outside RAM",
               (unsigned long long)gpa, (unsigned long long)len);
}

/* Copies between buf and guest memory once the whole range has been checked. */
static void copy_range(uint64_t gpa, void *buf, uint64_t len, bool to_guest)
{
    uint8_t *p = buf;

    while (len > 0) {
        PhysBlock *pb = find_block(gpa);
        uint64_t off = gpa - pb->rb.gpa;
        uint64_t chunk = MIN(len, pb->rb.size - off);

        if (to_guest) {
            ram_written = true;
            memcpy(pb->rb.host + off, p, chunk);
        } else {
            memcpy(p, pb->rb.host + off, chunk);
        }
        p += chunk;
        gpa += chunk;
        len -= chunk;
    }
}

bool physmem_read(uint64_t gpa, void *buf, uint64_t len, Error **errp)
{
    if (!range_is_ram(gpa, len, false)) {
        outside_ram(errp, gpa, len);
        return false;
    }
    copy_range(gpa, buf, len, false);
    return true;
}

bool physmem_write(uint64_t gpa, const void *buf, uint64_t len, Error **errp)
{
    if (!range_is_ram(gpa, len, false)) {
        outside_ram(errp, gpa, len);
        return false;
    }
    if (!range_is_ram(gpa, len, true)) {
        error_setg(errp, "guest-physical range 0x%llx+0x%llx is read-only",
                   (unsigned long long)gpa, (unsigned long long)len);
        return false;
    }
    copy_range(gpa, (void *)buf, len, true);
    return true;
}

bool physmem_write_rom(uint64_t gpa, const void *buf, uint64_t len, Error **errp)
{
    if (!range_is_ram(gpa, len, false)) {
        outside_ram(errp, gpa, len);
        return false;
    }
    copy_range(gpa, (void *)buf, len, true);
    return true;
}

uint8_t *physmem_host_ptr(uint64_t gpa, uint64_t len)
{
    PhysBlock *pb = find_block(gpa);

    if (!pb || len > pb->rb.size - (gpa - pb->rb.gpa)) {
        return NULL;
    }
    return pb->rb.host + (gpa - pb->rb.gpa);
}

/* Transparent huge pages need 2 MiB-aligned ranges; QEMU aligns RAM the same. */
#define RAM_ALIGN (2u << 20)

/*
 * MADV_HUGEPAGE over the whole pages of [p, p + size). Only advice: a kernel
 * without THP leaves the memory as it was, and so does a refusal.
 */
static void advise_huge(uint8_t *p, uint64_t size)
{
#ifdef MADV_HUGEPAGE
    uintptr_t page = (uintptr_t)getpagesize();
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + size) & ~(page - 1);

    if (hi > lo) {
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
}

/*
 * Anonymous guest RAM, aligned to RAM_ALIGN and marked MADV_HUGEPAGE as QEMU
 * marks its RAM. Without huge pages, a dump (or a loader) that walks RAM
 * takes a page fault and a TLB miss per 4 KiB page; with them, one per
 * 2 MiB, and untouched RAM reads from the huge zero page
 * (docs/performance.md). MAP_NORESERVE: a 64 GiB guest must start on a
 * smaller host; pages only cost memory once the guest or a loader touches
 * them. Exactly [result, result + size) stays mapped, so munmap(host, size)
 * frees it.
 */
static uint8_t *ram_mmap(uint64_t size)
{
    uint64_t total = size + RAM_ALIGN;
    uint8_t *p, *aligned;
    uint64_t head, tail;

    if (total < size || total > SIZE_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    p = mmap(NULL, total, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    aligned = (uint8_t *)(((uintptr_t)p + RAM_ALIGN - 1) & ~(uintptr_t)(RAM_ALIGN - 1));
    head = aligned - p;
    tail = total - head - size;
    if (head) {
        munmap(p, head);
    }
    if (tail) {
        munmap(aligned + size, tail);
    }
    advise_huge(aligned, size);
    return aligned;
}

const RAMBlock *physmem_add_block(const char *name, uint64_t gpa, uint64_t size,
                                  uint8_t *host, bool readonly, unsigned region,
                                  Error **errp)
{
    GPtrArray *arr = block_array();
    PhysBlock *nb;
    bool owned = false;
    size_t pos;

    if (size == 0 || gpa + size < gpa) {
        error_setg(errp, "memory block '%s' at 0x%llx has an invalid size 0x%llx",
                   name, (unsigned long long)gpa, (unsigned long long)size);
        return NULL;
    }
    /*
     * The blocks are sorted and disjoint, so only the neighbours of the
     * insertion point can overlap: O(log n) per block, which matters for a
     * vmcore with 65536 segments.
     */
    {
        size_t lo = 0, hi = arr->len;

        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (block_at(mid)->rb.gpa > gpa) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        pos = lo;
    }
    for (size_t i = pos > 0 ? pos - 1 : 0; i < MIN(pos + 1, (size_t)arr->len); i++) {
        const RAMBlock *rb = &block_at(i)->rb;
        if (gpa < rb->gpa + rb->size && rb->gpa < gpa + size) {
            error_setg(errp, "memory block '%s' [0x%llx, 0x%llx) overlaps '%s'",
                       name, (unsigned long long)gpa,
                       (unsigned long long)(gpa + size), rb->name);
            return NULL;
        }
    }
    if (!host) {
        host = ram_mmap(size);
        if (!host) {
            error_setg_errno(errp, errno, "cannot allocate %llu bytes for '%s'",
                             (unsigned long long)size, name);
            return NULL;
        }
        owned = true;
    } else if (!readonly && size >= RAM_ALIGN) {
        /*
         * RAM the machine mapped itself (pc.ram, split around the holes):
         * huge pages for the same reasons as ram_mmap's.
         */
        advise_huge(host, size);
    }
    nb = g_new0(PhysBlock, 1);
    nb->owned = owned;
    nb->rb.name = g_strdup(name);
    nb->rb.gpa = gpa;
    nb->rb.size = size;
    nb->rb.host = host;
    nb->rb.readonly = readonly;
    nb->rb.region = region;
    g_ptr_array_insert(arr, (gint)pos, nb);
    last_hit = 0;
    return &nb->rb;
}

uint8_t *physmem_alloc_ram(uint64_t size, Error **errp)
{
    Arena a = { ram_mmap(size), size };

    if (!a.host) {
        error_setg_errno(errp, errno, "cannot allocate %llu bytes of guest RAM",
                         (unsigned long long)size);
        return NULL;
    }
    if (!arenas) {
        arenas = g_array_new(FALSE, FALSE, sizeof(Arena));
    }
    g_array_append_val(arenas, a);
    return a.host;
}

uint8_t *physmem_map_file(int fd, uint64_t size, Error **errp)
{
    Arena a = { NULL, size, true };
    void *p;

    if (size == 0 || size > SIZE_MAX) {
        error_setg(errp, "cannot map a file of %llu bytes", (unsigned long long)size);
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot map %llu bytes of the file",
                         (unsigned long long)size);
        return NULL;
    }
    /* Dumps read it front to back, once: read ahead, and drop pages behind. */
    (void)madvise(p, size, MADV_SEQUENTIAL);
    a.host = p;
    if (!arenas) {
        arenas = g_array_new(FALSE, FALSE, sizeof(Arena));
    }
    g_array_append_val(arenas, a);
    return a.host;
}

bool physmem_trim_file_ram(void)
{
    if (ram_written || !arenas) {
        return false;
    }
    for (guint i = 0; i < arenas->len; i++) {
        const Arena *a = &g_array_index(arenas, Arena, i);

        /*
         * A private file mapping nobody wrote: the pages come back from the
         * file (the page cache) on the next touch, even one racing with this.
         */
        if (a->file) {
            (void)madvise(a->host, a->size, MADV_DONTNEED);
        }
    }
    return true;
}

void physmem_reset(void)
{
    ram_written = false;
    if (arenas) {
        for (guint i = 0; i < arenas->len; i++) {
            const Arena *a = &g_array_index(arenas, Arena, i);
            munmap(a->host, a->size);
        }
        g_array_free(arenas, TRUE);
        arenas = NULL;
    }
    if (!blocks) {
        return;
    }
    for (size_t i = 0; i < blocks->len; i++) {
        PhysBlock *pb = block_at(i);
        if (pb->owned) {
            munmap(pb->rb.host, pb->rb.size);
        }
        g_free(pb->rb.name);
        g_free(pb);
    }
    g_ptr_array_free(blocks, TRUE);
    blocks = NULL;
    last_hit = 0;
}

/*
 * Guest-physical bus accesses as a device or qtest sees them: holes read
 * as zeros, and writes to holes or ROM are dropped, as QEMU's unassigned
 * and ROM regions behave.
 */
void guest_bus_read(uint64_t gpa, void *buf, uint64_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        const RAMBlock *rb = physmem_find(gpa);
        uint64_t chunk;

        if (rb) {
            chunk = MIN(len, rb->size - (gpa - rb->gpa));
            memcpy(p, rb->host + (gpa - rb->gpa), chunk);
        } else {
            /* up to the next block, or the rest */
            chunk = len;
            for (size_t i = 0; i < physmem_block_count(); i++) {
                const RAMBlock *b = physmem_block(i);
                if (b->gpa > gpa && b->gpa - gpa < chunk) {
                    chunk = b->gpa - gpa;
                }
            }
            memset(p, 0, chunk);
        }
        p += chunk;
        gpa += chunk;
        len -= chunk;
    }
}

void guest_bus_write(uint64_t gpa, const void *buf, uint64_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        const RAMBlock *rb = physmem_find(gpa);
        uint64_t chunk;

        if (rb) {
            chunk = MIN(len, rb->size - (gpa - rb->gpa));
            if (!rb->readonly) {
                ram_written = true;
                memcpy(rb->host + (gpa - rb->gpa), p, chunk);
            }
        } else {
            chunk = len;
            for (size_t i = 0; i < physmem_block_count(); i++) {
                const RAMBlock *b = physmem_block(i);
                if (b->gpa > gpa && b->gpa - gpa < chunk) {
                    chunk = b->gpa - gpa;
                }
            }
        }
        p += chunk;
        gpa += chunk;
        len -= chunk;
    }
}
