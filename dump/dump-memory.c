/* Guest-physical blocks and the bounded, QEMU-ordered mapping list. */
#include <glib.h>
#include <string.h>

#include "sysemu/dump-x86.h"
#include "sysemu/dump-memory.h"

/* ---------------------------------------------------------------------- */
/* guest_phys_blocks                                                        */
/* ---------------------------------------------------------------------- */

void dump_guest_blocks_collect(DumpGuestBlockList *list)
{
    list->blocks = dump_host_guest_blocks(&list->num);
}

void dump_guest_blocks_free(DumpGuestBlockList *list)
{
    g_free(list->blocks);
    list->blocks = NULL;
    list->num = 0;
    list->live = NULL;
}

const DumpGuestBlock *dump_guest_blocks_find(const DumpGuestBlockList *list,
                                             uint64_t gpa)
{
    size_t lo = 0, hi = list->num;

    /* Sorted and disjoint: the last block starting at or below gpa. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (list->blocks[mid].target_start <= gpa) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0 || gpa >= list->blocks[lo - 1].target_end) {
        return NULL;
    }
    return &list->blocks[lo - 1];
}

uint8_t *dump_guest_blocks_host_ptr(const DumpGuestBlockList *list, uint64_t gpa,
                                    uint64_t len)
{
    const DumpGuestBlock *b = dump_guest_blocks_find(list, gpa);

    if (!b || len > b->target_end - gpa) {
        return NULL;
    }
    return b->host_addr + (gpa - b->target_start);
}

bool dump_guest_blocks_is_ram(const DumpGuestBlockList *list, uint64_t gpa,
                              uint64_t len)
{
    while (len) {
        const DumpGuestBlock *b = dump_guest_blocks_find(list, gpa);
        uint64_t n;

        if (!b) {
            return false;
        }
        n = MIN(len, b->target_end - gpa);
        gpa += n;
        len -= n;
    }
    return true;
}

bool dump_guest_blocks_read(const DumpGuestBlockList *list, uint64_t gpa,
                            void *buf, uint64_t len)
{
    uint8_t *out = buf;

    if (!dump_guest_blocks_is_ram(list, gpa, len)) {
        return false;
    }
    while (len) {
        const DumpGuestBlock *b = dump_guest_blocks_find(list, gpa);
        uint64_t n = MIN(len, b->target_end - gpa);
        const uint8_t *src = b->host_addr + (gpa - b->target_start);

        if (list->live) {
            dump_live_read(list->live, src, out, n);
        } else {
            memcpy(out, src, n);
        }
        out += n;
        gpa += n;
        len -= n;
    }
    return true;
}

void dump_guest_blocks_release(const DumpGuestBlockList *list, uint64_t gpa,
                               uint64_t len)
{
    const DumpGuestBlock *b;

    while (list->live && len && (b = dump_guest_blocks_find(list, gpa))) {
        uint64_t n = MIN(len, b->target_end - gpa);

        dump_live_release(list->live, b->host_addr + (gpa - b->target_start), n);
        gpa += n;
        len -= n;
    }
}

void dump_guest_blocks_release_below(const DumpGuestBlockList *list,
                                     DumpReleaseCursor *c, uint64_t gpa)
{
    if (!list->live) {
        return;
    }
    while (c->block < list->num) {
        const DumpGuestBlock *b = &list->blocks[c->block];
        uint64_t from = MAX(c->addr, b->target_start);
        uint64_t to = MIN(gpa, b->target_end);

        if (to > from) {
            dump_live_release(list->live, b->host_addr + (from - b->target_start),
                              to - from);
        }
        if (gpa < b->target_end) {
            /*
             * Resume at the page holding gpa: its first bytes were read but
             * the release above kept it (it is not whole), the next one
             * covers it entirely.
             */
            c->addr = MAX(b->target_start, gpa & ~(uint64_t)4095);
            return;
        }
        c->block++;
        c->addr = 0;
    }
}

/* ---------------------------------------------------------------------- */
/* The mapping list                                                         */
/* ---------------------------------------------------------------------- */

/*
 * QEMU keeps a sorted linked list of ~40-byte nodes and finds merge partners
 * by a linear walk: O(n) per insertion, O(n^2) for a guest with many
 * aliases, and gigabytes for a hostile one. A mapping can only merge with
 * one whose (virt - phys) is the same, so we group entries by that delta
 * and keep each group sorted by phys. Memory is what bounds the list, so
 * everything is compact (MEMORY_MAPPING_MAX_ENTRIES at about 50 bytes each
 * at most): the entries are one array of 24-byte records in creation
 * order; the index is an open-addressing table of 4-byte slots that store
 * no key (the delta is read from the entry a slot names); a delta with one
 * entry, the usual case, needs no group. The final order (phys ascending,
 * newest first among equal phys) is produced once, by sorting and permuting
 * the array in place, when the list is first read.
 */
typedef struct MappingGroup {
    uint32_t n, cap;
    uint64_t maxlen;          /* longest member: bounds the backward scan */
    uint32_t items[];         /* entry indices, ascending phys */
} MappingGroup;

/* Slot values: 0 empty, else code + 1; code = index << 1 | 1 or group << 1. */
#define SLOT_ENTRY(i) ((((uint32_t)(i)) << 1 | 1) + 1)
#define SLOT_GROUP(g) ((((uint32_t)(g)) << 1) + 1)

struct DumpMappingList {
    DumpMapping *ents;      /* creation order; once sorted, the final order */
    size_t num, cap;
    uint32_t *slots;          /* delta index, a power of two long */
    size_t slot_cap, slot_used;
    MappingGroup **groups;
    size_t ngroups, groups_cap;
    int64_t last;             /* QEMU's last_mapping, -1 when none */
    uint64_t max_entries;
    uint64_t work_left;       /* entries scanned/moved; bounds the time */
    uint64_t walk_left;       /* page-table entries the walk may still read */
    const atomic_bool *cancel;
    bool sorted;
};

static uint32_t delta_hash(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return (uint32_t)v;
}

DumpMappingList *dump_mapping_list_new(void)
{
    DumpMappingList *list = g_new0(DumpMappingList, 1);

    list->last = -1;
    list->max_entries = MEMORY_MAPPING_MAX_ENTRIES;
    list->work_left = MEMORY_MAPPING_MAX_WORK;
    list->walk_left = X86_WALK_MAX_ENTRIES;
    return list;
}

void dump_mapping_list_set_cancel(DumpMappingList *list,
                                    const atomic_bool *cancel)
{
    list->cancel = cancel;
}

bool dump_mapping_walk_spend(DumpMappingList *list, uint64_t n, Error **errp)
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

static void drop_index(DumpMappingList *list)
{
    for (size_t i = 0; i < list->ngroups; i++) {
        g_free(list->groups[i]);
    }
    g_free(list->groups);
    list->groups = NULL;
    list->ngroups = list->groups_cap = 0;
    g_free(list->slots);
    list->slots = NULL;
    list->slot_cap = list->slot_used = 0;
}

void dump_mapping_list_free(DumpMappingList *list)
{
    if (!list) {
        return;
    }
    drop_index(list);
    g_free(list->ents);
    g_free(list);
}

/* Appends without merging; the caller checks max_entries where it must. */
static uint32_t list_append(DumpMappingList *list, uint64_t phys, uint64_t virt,
                            uint64_t len)
{
    g_assert(!list->sorted);
    if (list->num == list->cap) {
        /* realloc moves big blocks with mremap: no copy, untouched tail free */
        list->cap = list->cap ? list->cap * 2 : 64;
        list->ents = g_renew(DumpMapping, list->ents, list->cap);
    }
    list->ents[list->num] = (DumpMapping){
        .phys_addr = phys, .virt_addr = virt, .length = len,
    };
    return list->num++;
}

static int cmp_out(gconstpointer a, gconstpointer b, gpointer opaque)
{
    const DumpMapping *ents = opaque;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;

    if (ents[ia].phys_addr != ents[ib].phys_addr) {
        return ents[ia].phys_addr < ents[ib].phys_addr ? -1 : 1;
    }
    return ia > ib ? -1 : (ia < ib);      /* newest first, as QEMU inserts */
}

/* Freezes the list into its final order; no merges after this. */
static void list_sort(DumpMappingList *list)
{
    size_t n = list->num;
    g_autofree uint32_t *idx = NULL;

    if (list->sorted) {
        return;
    }
    list->sorted = true;
    drop_index(list);
    idx = g_new(uint32_t, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    g_qsort_with_data(idx, n, sizeof(uint32_t), cmp_out, list->ents);
    /*
     * Position j takes entry idx[j]: follow each cycle of that permutation,
     * marking visited positions in idx's top bit (n <= 2^31), so the array
     * is reordered in place instead of copied.
     */
    for (size_t start = 0; start < n; start++) {
        DumpMapping tmp;
        size_t j = start;

        if (idx[start] & 0x80000000u) {
            continue;
        }
        tmp = list->ents[start];
        for (;;) {
            size_t k = idx[j];

            idx[j] |= 0x80000000u;
            if (k == start) {
                list->ents[j] = tmp;
                break;
            }
            list->ents[j] = list->ents[k];
            j = k;
        }
    }
}

size_t dump_mapping_list_count(const DumpMappingList *list)
{
    return list->num;
}

const DumpMapping *dump_mapping_list_next(const DumpMappingList *list,
                                              const DumpMapping *prev)
{
    DumpMappingList *l = (DumpMappingList *)list;
    size_t i;

    list_sort(l);
    i = prev ? (size_t)(prev - l->ents) + 1 : 0;
    return i < l->num ? &l->ents[i] : NULL;
}

static DumpMapping *entry(DumpMappingList *list, uint32_t i)
{
    return &list->ents[i];
}

static bool spend(DumpMappingList *list, uint64_t work, Error **errp)
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

/* The delta of the entries a slot stands for. */
static uint64_t slot_delta(DumpMappingList *list, uint32_t v)
{
    uint32_t code = v - 1;
    uint32_t i = code & 1 ? code >> 1 : list->groups[code >> 1]->items[0];
    const DumpMapping *m = entry(list, i);

    return m->virt_addr - m->phys_addr;
}

/* The slot for delta: the one holding it, or the empty one it would take. */
static uint32_t *slot_find(DumpMappingList *list, uint64_t delta)
{
    size_t mask = list->slot_cap - 1;
    size_t i = delta_hash(delta) & mask;

    while (list->slots[i] && slot_delta(list, list->slots[i]) != delta) {
        i = (i + 1) & mask;
    }
    return &list->slots[i];
}

/* Keeps the table at most half full, so probes stay short. */
static void slots_reserve(DumpMappingList *list)
{
    uint32_t *old = list->slots;
    size_t old_cap = list->slot_cap;

    if (old_cap && (list->slot_used + 1) * 2 <= old_cap) {
        return;
    }
    list->slot_cap = old_cap ? old_cap * 2 : 1024;
    list->slots = g_new0(uint32_t, list->slot_cap);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i]) {
            *slot_find(list, slot_delta(list, old[i])) = old[i];
        }
    }
    g_free(old);
}

/* Binary search: first position in g whose entry has phys > key. */
static uint32_t group_upper(DumpMappingList *list, MappingGroup *g, uint64_t key)
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

static void group_insert(DumpMappingList *list, uint32_t gi, uint32_t idx)
{
    MappingGroup *g = list->groups[gi];
    const DumpMapping *m = entry(list, idx);
    uint32_t pos;

    if (g->n == g->cap) {
        g->cap *= 2;
        g = g_realloc(g, sizeof(*g) + g->cap * sizeof(uint32_t));
        list->groups[gi] = g;
    }
    pos = group_upper(list, g, m->phys_addr);
    memmove(&g->items[pos + 1], &g->items[pos], (g->n - pos) * sizeof(uint32_t));
    g->items[pos] = idx;
    g->n++;
    g->maxlen = MAX(g->maxlen, m->length);
}

/* A group of two for a delta that had one entry; its number. */
static uint32_t group_new(DumpMappingList *list, uint32_t only)
{
    MappingGroup *g = g_malloc(sizeof(*g) + 2 * sizeof(uint32_t));

    if (list->ngroups == list->groups_cap) {
        list->groups_cap = list->groups_cap ? list->groups_cap * 2 : 64;
        list->groups = g_renew(MappingGroup *, list->groups, list->groups_cap);
    }
    g->n = 0;
    g->cap = 2;
    g->maxlen = 0;
    list->groups[list->ngroups] = g;
    group_insert(list, list->ngroups, only);
    return list->ngroups++;
}

/* Puts a member whose phys changed back into order. */
static void group_reposition(DumpMappingList *list, uint32_t gi, uint32_t idx)
{
    MappingGroup *g = list->groups[gi];

    for (uint32_t i = 0; i < g->n; i++) {
        if (g->items[i] == idx) {
            memmove(&g->items[i], &g->items[i + 1], (g->n - i - 1) * sizeof(uint32_t));
            g->n--;
            break;
        }
    }
    group_insert(list, gi, idx);
}

static bool ranges_touch(const DumpMapping *m, uint64_t phys, uint64_t len)
{
    /* QEMU's two cases: m ends where the range starts, or they share bytes. */
    return m->phys_addr <= phys + len && m->phys_addr + m->length >= phys;
}

/* Union of m and the range in virtual space; the fix: phys follows virt down. */
static void merge_into(DumpMapping *m, uint64_t phys, uint64_t virt, uint64_t len)
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

bool dump_mapping_list_add_merge_sorted(DumpMappingList *list, uint64_t phys,
                                          uint64_t virt, uint64_t len,
                                          Error **errp)
{
    uint64_t delta = virt - phys;
    uint32_t *slot, code;
    int64_t gi = -1;
    uint32_t idx;

    g_assert(!list->sorted);
    if (list->last >= 0) {
        DumpMapping *last = entry(list, list->last);

        if (phys == last->phys_addr + last->length &&
            virt == last->virt_addr + last->length) {
            last->length += len;
            return true;
        }
    }
    if (!spend(list, 1, errp)) {
        return false;
    }

    if (!list->slot_cap) {
        slots_reserve(list);
    }
    slot = slot_find(list, delta);
    code = *slot - 1;
    if (*slot && (code & 1)) {
        uint32_t only = code >> 1;
        DumpMapping *m = entry(list, only);

        if (ranges_touch(m, phys, len)) {
            merge_into(m, phys, virt, len);
            list->last = only;
            return true;
        }
    } else if (*slot) {
        /*
         * QEMU takes the first entry in phys order that touches the range.
         * Members below phys - maxlen cannot reach it, which bounds the scan.
         */
        MappingGroup *g = list->groups[code >> 1];
        uint32_t pos = group_upper(list, g, phys + len);
        int64_t found = -1;

        gi = code >> 1;
        while (pos > 0) {
            DumpMapping *m = entry(list, g->items[pos - 1]);

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
            DumpMapping *m = entry(list, fi);
            uint64_t old_phys = m->phys_addr;

            merge_into(m, phys, virt, len);
            g->maxlen = MAX(g->maxlen, m->length);
            if (m->phys_addr != old_phys) {
                if (!spend(list, g->n, errp)) {
                    return false;
                }
                group_reposition(list, gi, fi);
            }
            list->last = fi;
            return true;
        }
    }

    if (list->num >= list->max_entries) {
        error_setg(errp, "dump: the guest's page tables map more than %llu "
                   "separate ranges; use paging=false",
                   (unsigned long long)list->max_entries);
        return false;
    }
    /*
     * The insertion moves the members above phys: charge those, so that a
     * walk adding a group's mappings in ascending order (the usual case: a
     * direct map with holes) pays O(1) each, not the group's size.
     */
    if (gi >= 0) {
        MappingGroup *g = list->groups[gi];

        if (!spend(list, g->n - group_upper(list, g, phys), errp)) {
            return false;
        }
    }
    idx = list_append(list, phys, virt, len);
    list->last = idx;
    if (gi >= 0) {
        group_insert(list, gi, idx);
    } else if (*slot) {
        /* The slot's entry is found through its own delta: still valid. */
        *slot = SLOT_GROUP(group_new(list, code >> 1));
        group_insert(list, list->ngroups - 1, idx);
    } else {
        if ((list->slot_used + 1) * 2 > list->slot_cap) {
            slots_reserve(list);
            slot = slot_find(list, delta);
        }
        *slot = SLOT_ENTRY(idx);
        list->slot_used++;
    }
    return true;
}

void dump_get_guest_simple_memory_mapping(DumpMappingList *list,
                                          const DumpGuestBlockList *blocks)
{
    /* Blocks are sorted and disjoint: appending keeps QEMU's order. */
    for (size_t i = 0; i < blocks->num; i++) {
        list_append(list, blocks->blocks[i].target_start, 0,
                    blocks->blocks[i].target_end - blocks->blocks[i].target_start);
    }
}

bool dump_get_guest_memory_mapping(DumpMappingList *list,
                                   const DumpGuestBlockList *blocks,
                                   const DumpX86CPUState *cpus, int nr_cpus,
                                   Error **errp)
{
    int first = -1;
    GArray *walked;
    bool ok = true;

    for (int i = 0; i < nr_cpus; i++) {
        if (dump_x86_paging_enabled(&cpus[i])) {
            first = i;
            break;
        }
    }
    if (first < 0) {
        /* No vCPU pages: one identity mapping per block, never merged (QEMU). */
        for (size_t i = 0; i < blocks->num; i++) {
            const DumpGuestBlock *b = &blocks->blocks[i];

            list_append(list, b->target_start, b->target_start,
                        b->target_end - b->target_start);
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
    for (int i = first; i < nr_cpus && ok; i++) {
        X86WalkKey key;
        bool seen = false;

        x86_dump_walk_key(&cpus[i], &key);
        for (guint j = 0; j < walked->len && !seen; j++) {
            const X86WalkKey *k = &g_array_index(walked, X86WalkKey, j);

            seen = k->root == key.root && k->a20 == key.a20 && k->mode == key.mode;
        }
        if (seen) {
            continue;
        }
        g_array_append_val(walked, key);
        ok = x86_dump_get_memory_mapping(list, blocks, &cpus[i], errp);
    }
    g_array_free(walked, TRUE);
    return ok;
}

void dump_mapping_filter(DumpMappingList *list, int64_t begin, int64_t length)
{
    uint64_t fs = (uint64_t)begin;
    uint64_t fe = fs + (uint64_t)length;
    size_t w = 0;

    if (fe < fs) {
        fe = UINT64_MAX;
    }
    list_sort(list);
    for (size_t i = 0; i < list->num; i++) {
        DumpMapping m = list->ents[i];
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
        list->ents[w++] = m;
    }
    list->num = w;
}
