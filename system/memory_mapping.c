/* Guest-physical blocks and the bounded, QEMU-ordered mapping list. */
#include <glib.h>
#include <string.h>

#include "sysemu/cpus.h"
#include "sysemu/memory_mapping.h"
#include "sysemu/physmem.h"

/* ---------------------------------------------------------------------- */
/* guest_phys_blocks                                                        */
/* ---------------------------------------------------------------------- */

void guest_phys_blocks_collect(GuestPhysBlockList *list)
{
    size_t n = physmem_block_count();
    GArray *arr = g_array_sized_new(FALSE, FALSE, sizeof(GuestPhysBlock), n);
    unsigned prev_region = 0;

    for (size_t i = 0; i < n; i++) {
        const RAMBlock *rb = physmem_block(i);
        GuestPhysBlock *last = arr->len ?
            &g_array_index(arr, GuestPhysBlock, arr->len - 1) : NULL;

        if (!rb || rb->size == 0) {
            continue;
        }
        /* QEMU merges only when contiguous in both spaces and one region. */
        if (last && last->target_end == rb->gpa &&
            last->host_addr + (last->target_end - last->target_start) == rb->host &&
            prev_region == rb->region) {
            last->target_end += rb->size;
        } else {
            GuestPhysBlock b = {
                .target_start = rb->gpa,
                .target_end = rb->gpa + rb->size,
                .host_addr = rb->host,
            };
            g_array_append_val(arr, b);
        }
        prev_region = rb->region;
    }
    list->num = arr->len;
    list->blocks = (GuestPhysBlock *)g_array_free(arr, FALSE);
}

void guest_phys_blocks_free(GuestPhysBlockList *list)
{
    g_free(list->blocks);
    list->blocks = NULL;
    list->num = 0;
}

/* ---------------------------------------------------------------------- */
/* The mapping list                                                         */
/* ---------------------------------------------------------------------- */

/*
 * QEMU keeps a sorted linked list and finds merge partners by a linear walk:
 * O(n) per insertion and O(n^2) for a guest with many aliases. A mapping can
 * only merge with one whose (virt - phys) is the same, so we group entries
 * by that delta (hash) and keep each group sorted by phys. The final order
 * (phys ascending, newest first among equal phys) is produced once, by a
 * sort, when the list is first read.
 */
typedef struct MappingGroup {
    uint32_t n, cap;
    uint64_t maxlen;          /* longest member: bounds the backward scan */
    uint32_t items[];         /* entry indices, ascending phys */
} MappingGroup;

struct MemoryMappingList {
    GArray *entries;          /* MemoryMapping; index = creation order */
    GHashTable *groups;       /* delta -> MappingGroup*, or (index << 1 | 1) */
    int64_t last;             /* QEMU's last_mapping, -1 when none */
    uint64_t max_entries;
    uint64_t work_left;       /* entries scanned/moved; bounds the time */
    uint64_t walk_left;       /* page-table entries the walk may still read */
    const atomic_bool *cancel;
    bool sorted;
    MemoryMapping *out;       /* sorted copy, once read */
    size_t out_num;
};

static guint delta_hash(gconstpointer key)
{
    uint64_t v = (uint64_t)(uintptr_t)key;

    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return (guint)v;
}

MemoryMappingList *memory_mapping_list_new(void)
{
    MemoryMappingList *list = g_new0(MemoryMappingList, 1);

    list->entries = g_array_new(FALSE, FALSE, sizeof(MemoryMapping));
    list->groups = g_hash_table_new_full(delta_hash, NULL, NULL, NULL);
    list->last = -1;
    list->max_entries = MEMORY_MAPPING_MAX_ENTRIES;
    list->work_left = MEMORY_MAPPING_MAX_WORK;
    list->walk_left = X86_WALK_MAX_ENTRIES;
    return list;
}

void memory_mapping_list_set_cancel(MemoryMappingList *list,
                                    const atomic_bool *cancel)
{
    list->cancel = cancel;
}

bool memory_mapping_walk_spend(MemoryMappingList *list, uint64_t n, Error **errp)
{
    if (list->cancel && atomic_load(list->cancel)) {
        error_setg(errp, "dump: cancelled");
        return false;
    }
    if (list->walk_left < n) {
        list->walk_left = 0;
        error_setg(errp, "dump: the guest's page tables have more than %llu "
                   "entries to walk; use paging=false",
                   (unsigned long long)X86_WALK_MAX_ENTRIES);
        return false;
    }
    list->walk_left -= n;
    return true;
}

static void free_group(gpointer key, gpointer value, gpointer opaque)
{
    if (!((uintptr_t)value & 1)) {
        g_free(value);
    }
}

static void drop_index(MemoryMappingList *list)
{
    if (list->groups) {
        g_hash_table_foreach(list->groups, free_group, NULL);
        g_hash_table_destroy(list->groups);
        list->groups = NULL;
    }
}

void memory_mapping_list_free(MemoryMappingList *list)
{
    if (!list) {
        return;
    }
    drop_index(list);
    if (list->entries) {
        g_array_free(list->entries, TRUE);
    }
    g_free(list->out);
    g_free(list);
}

static int cmp_out(gconstpointer a, gconstpointer b, gpointer opaque)
{
    const MemoryMapping *ents = opaque;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;

    if (ents[ia].phys_addr != ents[ib].phys_addr) {
        return ents[ia].phys_addr < ents[ib].phys_addr ? -1 : 1;
    }
    return ia > ib ? -1 : (ia < ib);      /* newest first, as QEMU inserts */
}

/* Freezes the list into its final order; no merges after this. */
static void list_sort(MemoryMappingList *list)
{
    size_t n;
    g_autofree uint32_t *idx = NULL;
    const MemoryMapping *ents;

    if (list->sorted) {
        return;
    }
    n = list->entries->len;
    ents = (const MemoryMapping *)list->entries->data;
    idx = g_new(uint32_t, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    g_qsort_with_data(idx, n, sizeof(uint32_t), cmp_out, (gpointer)ents);
    list->out = g_new(MemoryMapping, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        list->out[i] = ents[idx[i]];
    }
    list->out_num = n;
    drop_index(list);
    g_array_free(list->entries, TRUE);
    list->entries = NULL;
    list->sorted = true;
}

size_t memory_mapping_list_count(const MemoryMappingList *list)
{
    return list->sorted ? list->out_num : list->entries->len;
}

const MemoryMapping *memory_mapping_list_next(const MemoryMappingList *list,
                                              const MemoryMapping *prev)
{
    MemoryMappingList *l = (MemoryMappingList *)list;
    size_t i;

    list_sort(l);
    i = prev ? (size_t)(prev - l->out) + 1 : 0;
    return i < l->out_num ? &l->out[i] : NULL;
}

static MemoryMapping *entry(MemoryMappingList *list, uint32_t i)
{
    return &g_array_index(list->entries, MemoryMapping, i);
}

static bool spend(MemoryMappingList *list, uint64_t work, Error **errp)
{
    if (work > list->work_left) {
        list->work_left = 0;
        error_setg(errp, "dump: the guest's page tables need more than %llu "
                   "merge steps; use paging=false",
                   (unsigned long long)MEMORY_MAPPING_MAX_WORK);
        return false;
    }
    list->work_left -= work;
    return true;
}

/* Binary search: first position in g whose entry has phys > key. */
static uint32_t group_upper(MemoryMappingList *list, MappingGroup *g, uint64_t key)
{
    uint32_t lo = 0, hi = g->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (entry(list, g->items[mid])->phys_addr <= key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static MappingGroup *group_insert(MemoryMappingList *list, MappingGroup *g,
                                  uint32_t idx)
{
    const MemoryMapping *m = entry(list, idx);
    uint32_t pos;

    if (g->n == g->cap) {
        g->cap *= 2;
        g = g_realloc(g, sizeof(*g) + g->cap * sizeof(uint32_t));
    }
    pos = group_upper(list, g, m->phys_addr);
    memmove(&g->items[pos + 1], &g->items[pos], (g->n - pos) * sizeof(uint32_t));
    g->items[pos] = idx;
    g->n++;
    g->maxlen = MAX(g->maxlen, m->length);
    return g;
}

/* Puts a member whose phys changed back into order. */
static void group_reposition(MemoryMappingList *list, MappingGroup *g, uint32_t idx)
{
    for (uint32_t i = 0; i < g->n; i++) {
        if (g->items[i] == idx) {
            memmove(&g->items[i], &g->items[i + 1], (g->n - i - 1) * sizeof(uint32_t));
            g->n--;
            break;
        }
    }
    group_insert(list, g, idx);
}

static bool ranges_touch(const MemoryMapping *m, uint64_t phys, uint64_t len)
{
    /* QEMU's two cases: m ends where the range starts, or they share bytes. */
    return m->phys_addr <= phys + len && m->phys_addr + m->length >= phys;
}

/* Union of m and the range in virtual space; the fix: phys follows virt down. */
static void merge_into(MemoryMapping *m, uint64_t phys, uint64_t virt, uint64_t len)
{
    if (virt < m->virt_addr) {
        uint64_t grow = m->virt_addr - virt;

        m->length += grow;
        m->virt_addr = virt;
        m->phys_addr -= grow;
    }
    if (virt + len > m->virt_addr + m->length) {
        m->length = virt + len - m->virt_addr;
    }
}

bool memory_mapping_list_add_merge_sorted(MemoryMappingList *list, uint64_t phys,
                                          uint64_t virt, uint64_t len,
                                          Error **errp)
{
    uint64_t delta = virt - phys;
    gpointer key = (gpointer)(uintptr_t)delta;
    gpointer val;
    MappingGroup *g = NULL;
    MemoryMapping nm;
    uint32_t idx;

    g_assert(!list->sorted);
    if (list->last >= 0) {
        MemoryMapping *last = entry(list, list->last);

        if (phys == last->phys_addr + last->length &&
            virt == last->virt_addr + last->length) {
            last->length += len;
            return true;
        }
    }
    if (!spend(list, 1, errp)) {
        return false;
    }

    val = g_hash_table_lookup(list->groups, key);
    if (val && ((uintptr_t)val & 1)) {
        uint32_t only = (uintptr_t)val >> 1;
        MemoryMapping *m = entry(list, only);

        if (ranges_touch(m, phys, len)) {
            merge_into(m, phys, virt, len);
            list->last = only;
            return true;
        }
        g = g_malloc(sizeof(*g) + 4 * sizeof(uint32_t));
        g->n = 0;
        g->cap = 4;
        g->maxlen = 0;
        g = group_insert(list, g, only);
        g_hash_table_insert(list->groups, key, g);
    } else if (val) {
        /*
         * QEMU takes the first entry in phys order that touches the range.
         * Members below phys - maxlen cannot reach it, which bounds the scan.
         */
        uint32_t pos;
        int64_t found = -1;

        g = val;
        pos = group_upper(list, g, phys + len);
        while (pos > 0) {
            MemoryMapping *m = entry(list, g->items[pos - 1]);

            if (m->phys_addr + g->maxlen < phys) {
                break;
            }
            if (!spend(list, 1, errp)) {
                return false;
            }
            if (ranges_touch(m, phys, len)) {
                found = pos - 1;
            }
            pos--;
        }
        if (found >= 0) {
            uint32_t fi = g->items[found];
            MemoryMapping *m = entry(list, fi);
            uint64_t old_phys = m->phys_addr;

            merge_into(m, phys, virt, len);
            g->maxlen = MAX(g->maxlen, m->length);
            if (m->phys_addr != old_phys) {
                if (!spend(list, g->n, errp)) {
                    return false;
                }
                group_reposition(list, g, fi);
            }
            list->last = fi;
            return true;
        }
    }

    if (list->entries->len >= list->max_entries) {
        error_setg(errp, "dump: the guest's page tables map more than %llu "
                   "separate ranges; use paging=false",
                   (unsigned long long)list->max_entries);
        return false;
    }
    nm = (MemoryMapping){ .phys_addr = phys, .virt_addr = virt, .length = len };
    g_array_append_val(list->entries, nm);
    idx = list->entries->len - 1;
    list->last = idx;
    if (g) {
        if (!spend(list, g->n, errp)) {
            return false;
        }
        g = group_insert(list, g, idx);
        g_hash_table_insert(list->groups, key, g);
    } else {
        g_hash_table_insert(list->groups, key, (gpointer)(((uintptr_t)idx << 1) | 1));
    }
    return true;
}

void qemu_get_guest_simple_memory_mapping(MemoryMappingList *list,
                                          const GuestPhysBlockList *blocks)
{
    /* Blocks are sorted and disjoint: appending keeps QEMU's order. */
    for (size_t i = 0; i < blocks->num; i++) {
        MemoryMapping m = {
            .phys_addr = blocks->blocks[i].target_start,
            .virt_addr = 0,
            .length = blocks->blocks[i].target_end - blocks->blocks[i].target_start,
        };
        g_assert(!list->sorted);
        g_array_append_val(list->entries, m);
    }
}

bool qemu_get_guest_memory_mapping(MemoryMappingList *list,
                                   const GuestPhysBlockList *blocks,
                                   Error **errp)
{
    int n = machine_cpu_count();
    int first = -1;
    GArray *walked;
    bool ok = true;

    for (int i = 0; i < n; i++) {
        X86CPU *cpu = machine_cpu(i);

        if (cpu && x86_cpu_paging_enabled(&cpu->env)) {
            first = i;
            break;
        }
    }
    if (first < 0) {
        /* No vCPU pages: one identity mapping per block, never merged (QEMU). */
        for (size_t i = 0; i < blocks->num; i++) {
            const GuestPhysBlock *b = &blocks->blocks[i];
            MemoryMapping m = {
                .phys_addr = b->target_start,
                .virt_addr = b->target_start,
                .length = b->target_end - b->target_start,
            };

            g_assert(!list->sorted);
            g_array_append_val(list->entries, m);
        }
        return true;
    }
    /*
     * QEMU walks every vCPU. A second walk of the same tables re-adds leaves
     * that are already merged, which changes nothing unless another address
     * space filled the gap between two mappings of one offset (then QEMU
     * grows one over the other: docs/compat.md difference 7). So each
     * distinct key is walked once: 255 vCPUs on one CR3 cost one walk.
     */
    walked = g_array_new(FALSE, FALSE, sizeof(X86WalkKey));
    for (int i = first; i < n && ok; i++) {
        X86CPU *cpu = machine_cpu(i);
        X86WalkKey key;
        bool seen = false;

        if (!cpu) {
            continue;
        }
        x86_cpu_walk_key(&cpu->env, &key);
        for (guint j = 0; j < walked->len && !seen; j++) {
            const X86WalkKey *k = &g_array_index(walked, X86WalkKey, j);

            seen = k->root == key.root && k->a20 == key.a20 && k->mode == key.mode;
        }
        if (seen) {
            continue;
        }
        g_array_append_val(walked, key);
        ok = x86_cpu_get_memory_mapping(list, &cpu->env, errp);
    }
    g_array_free(walked, TRUE);
    return ok;
}

void memory_mapping_filter(MemoryMappingList *list, int64_t begin, int64_t length)
{
    uint64_t fs = (uint64_t)begin;
    uint64_t fe = fs + (uint64_t)length;
    size_t w = 0;

    if (fe < fs) {
        fe = UINT64_MAX;
    }
    list_sort(list);
    for (size_t i = 0; i < list->out_num; i++) {
        MemoryMapping m = list->out[i];
        uint64_t end = m.phys_addr + m.length;

        if (m.length == 0 || end <= fs || m.phys_addr >= fe) {
            continue;
        }
        if (m.phys_addr < fs) {
            uint64_t cut = fs - m.phys_addr;

            m.length -= cut;
            m.phys_addr = fs;
            if (m.virt_addr) {
                m.virt_addr += cut;
            }
        }
        if (m.phys_addr + m.length > fe) {
            m.length = fe - m.phys_addr;
        }
        list->out[w++] = m;
    }
    list->out_num = w;
}
