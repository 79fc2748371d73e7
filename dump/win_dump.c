/* win-dmp writer: a Windows full crash dump from the guest header, RAM untouched. */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "dump/win_dump_defs.h"
#include "sysemu/dump-core.h"

/*
 * QEMU 7.2 writes each vCPU's CONTEXT into guest memory, dumps, and writes
 * the old bytes back (not on every error path). We never write guest
 * memory: the CONTEXT bytes are kept as overlays that every later read of
 * guest memory sees, exactly where QEMU's writes would have landed, and
 * they are laid over the pages as the runs stream out.
 */

/* RAM goes out in runs of at most this, straight from guest memory. */
#define WIN_CHUNK (4u << 20)
#define WIN_CTX_MAX 1232

/* Part of one CONTEXT that lands in one guest page. */
typedef struct WinOverlay {
    uint64_t paddr;
    uint32_t len;
    uint32_t ctx_off;
    uint32_t cpu;        /* index into WinDump.ctx */
    uint32_t seq;        /* application order: a later overlay wins */
} WinOverlay;

typedef struct WinDump {
    bool x64;
    size_t hdr_size;
    size_t ctx_size;
    uint8_t hdr[WIN_DUMP_HDR64_SIZE];   /* the patched header, little-endian */
    const DumpPlan *plan;
    const DumpGuestBlockList *blocks;   /* the plan's guest RAM */
    DumpX86CPUState sys_env;            /* vCPU 0 with the header's CR3 */
    uint8_t (*ctx)[WIN_CTX_MAX];        /* the CONTEXTs, in CPU order */
    GArray *overlays;                   /* WinOverlay, application order */
    GArray *by_addr;                    /* the same, sorted by paddr */
    uint8_t *bounce;                    /* a chunk that needs overlays */
} WinDump;

/* ---------------------------------------------------------------------- */
/* Little-endian fields at the boundary                                    */
/* ---------------------------------------------------------------------- */

static uint64_t get_le(const void *p, size_t size)
{
    const uint8_t *b = p;
    uint64_t v = 0;

    for (size_t i = size; i-- > 0;) {
        v = (v << 8) | b[i];
    }
    return v;
}

static void put_le(void *p, size_t size, uint64_t v)
{
    uint8_t *b = p;

    for (size_t i = 0; i < size; i++) {
        b[i] = v >> (8 * i);
    }
}

#define H64(w) ((WinDumpHeader64 *)(w)->hdr)
#define H32(w) ((WinDumpHeader32 *)(w)->hdr)
/* A header field of either layout, read or written as a little-endian integer. */
#define HFIELD_PTR(w, f) ((w)->x64 ? (void *)&H64(w)->f : (void *)&H32(w)->f)
#define HFIELD_SIZE(w, f) ((w)->x64 ? sizeof(H64(w)->f) : sizeof(H32(w)->f))
#define HGET(w, f) get_le(HFIELD_PTR(w, f), HFIELD_SIZE(w, f))
#define HSET(w, f, v) put_le(HFIELD_PTR(w, f), HFIELD_SIZE(w, f), (v))

static size_t ptr_size(const WinDump *w)
{
    return w->x64 ? 8 : 4;
}

/* ---------------------------------------------------------------------- */
/* Guest memory as QEMU's debugger accessor sees it, overlays applied      */
/* ---------------------------------------------------------------------- */

static void apply_overlays(const WinDump *w, uint64_t paddr, uint8_t *buf, size_t len,
                           const WinOverlay *ov, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const WinOverlay *o = &ov[i];
        uint64_t lo = MAX(paddr, o->paddr);
        uint64_t hi = MIN(paddr + len, o->paddr + o->len);

        if (hi > lo) {
            memcpy(buf + (lo - paddr), w->ctx[o->cpu] + o->ctx_off + (lo - o->paddr),
                   hi - lo);
        }
    }
}

/* Inside one page: RAM or ROM only (nothing else is modelled), with overlays. */
static bool read_phys(const WinDump *w, uint64_t paddr, uint8_t *buf, size_t len)
{
    if (!dump_plan_read_phys(w->plan, paddr, buf, len)) {
        return false;
    }
    apply_overlays(w, paddr, buf, len, (const WinOverlay *)w->overlays->data,
                   w->overlays->len);
    return true;
}

/*
 * Translation of the page holding vaddr through the system CR3. Legacy and
 * PAE paging only see 32 address bits, as QEMU's walker (its higher bits
 * fall out of the index arithmetic).
 */
static bool translate(const WinDump *w, uint64_t vaddr, uint64_t *paddr)
{
    uint64_t page = vaddr & ~(uint64_t)(WIN_PAGE_SIZE - 1);

    if (dump_x86_paging_enabled(&w->sys_env) && !dump_x86_long_mode(&w->sys_env)) {
        page &= 0xffffffffu;
    }
    if (!x86_virt_to_phys(w->blocks, &w->sys_env, page, paddr)) {
        return false;
    }
    *paddr += vaddr & (WIN_PAGE_SIZE - 1);
    return true;
}

/*
 * cpu_memory_rw_debug(read) on vCPU 0: page by page, and like QEMU the
 * pages before a failing one are already in buf.
 */
static bool read_virt(const WinDump *w, uint64_t vaddr, void *buf, size_t len)
{
    uint8_t *out = buf;

    while (len) {
        size_t n = MIN(len, WIN_PAGE_SIZE - (vaddr & (WIN_PAGE_SIZE - 1)));
        uint64_t paddr;

        if (!translate(w, vaddr, &paddr) || !read_phys(w, paddr, out, n)) {
            return false;
        }
        vaddr += n;
        out += n;
        len -= n;
    }
    return true;
}

static bool read_ptr(const WinDump *w, uint64_t vaddr, uint64_t *val)
{
    uint8_t b[8] = { 0 };
    bool ok = read_virt(w, vaddr, b, ptr_size(w));

    *val = get_le(b, ptr_size(w));
    return ok;
}

/* A guest tag for an error text: up to 4 bytes, printable ASCII only. */
static void tag_text(const void *tag, char out[5])
{
    const uint8_t *t = tag;
    size_t i;

    for (i = 0; i < 4 && t[i]; i++) {
        out[i] = t[i] >= 0x20 && t[i] < 0x7f ? t[i] : '?';
    }
    out[i] = '\0';
}

/* ---------------------------------------------------------------------- */
/* QEMU 7.2's checks and patches (reference 6.3)                           */
/* ---------------------------------------------------------------------- */

static bool check_header(WinDump *w, const DumpPlan *s, Error **errp)
{
    const uint8_t *h = s->guest_note + WIN_DUMP_NOTE_HDR_SIZE;
    char got[5];

    if (memcmp(h, "PAGE", 4)) {
        tag_text(h, got);
        error_setg(errp, "win-dump: invalid header, expected 'PAGE', got '%s'", got);
        return false;
    }
    if (!memcmp(h + 4, "DUMP", 4)) {
        w->x64 = false;
    } else if (!memcmp(h + 4, "DU64", 4)) {
        w->x64 = true;
    } else {
        tag_text(h + 4, got);
        error_setg(errp, "win-dump: invalid header, expected 'DUMP' or 'DU64', got '%s'",
                   got);
        return false;
    }
    w->hdr_size = w->x64 ? WIN_DUMP_HDR64_SIZE : WIN_DUMP_HDR32_SIZE;
    w->ctx_size = w->x64 ? sizeof(WinContext64) : WIN_CTX32_QEMU_SIZE;
    /* QEMU would read a 64-bit header past the end of a 32-bit-sized note. */
    if (s->guest_note_size != WIN_DUMP_NOTE_HDR_SIZE + w->hdr_size) {
        error_setg(errp, "win-dump: invalid vmcoreinfo note size");
        return false;
    }
    memcpy(w->hdr, h, w->hdr_size);
    return true;
}

static bool check_kdbg(WinDump *w, Error **errp)
{
    uint64_t kdbg = HGET(w, KdDebuggerDataBlock);
    uint8_t tag[4];
    char got[5];

    if (!read_virt(w, kdbg + KDBG_OWNER_TAG_OFFSET, tag, 4)) {
        error_setg(errp, "win-dump: failed to read OwnerTag");
        return false;
    }
    if (memcmp(tag, "KDBG", 4)) {
        /*
         * Windows keeps KDBG encrypted; the fwcfg driver leaves the address
         * of a decrypted copy in BugcheckParameter1. One retry, as QEMU.
         */
        kdbg = HGET(w, Bugcheck.BugcheckParameter[0]);
        if (!read_virt(w, kdbg + KDBG_OWNER_TAG_OFFSET, tag, 4)) {
            error_setg(errp, "win-dump: failed to read OwnerTag");
            return false;
        }
        if (memcmp(tag, "KDBG", 4)) {
            tag_text(tag, got);
            error_setg(errp, "win-dump: invalid KDBG OwnerTag, expected 'KDBG', "
                       "got '%s'", got);
            return false;
        }
    }
    HSET(w, KdDebuggerDataBlock, kdbg);
    return true;
}

static void patch_header(WinDump *w)
{
    uint64_t kdbg = HGET(w, KdDebuggerDataBlock);
    uint64_t bugcheck_data;

    if (w->x64) {
        uint64_t pages = get_le(&H64(w)->PhysicalMemoryBlock.NumberOfPages, 8);

        put_le(&H64(w)->RequiredDumpSpace, 8,
               WIN_DUMP_HDR64_SIZE + (pages << WIN_PAGE_SHIFT));
        put_le(&H64(w)->PhysicalMemoryBlock.unused, 4, 0);
        put_le(&H64(w)->unused1, 4, 0);
    } else {
        uint64_t pages = get_le(&H32(w)->PhysicalMemoryBlock.NumberOfPages, 4);
        uint64_t space = WIN_DUMP_HDR32_SIZE + (pages << WIN_PAGE_SHIFT);

        /*
         * QEMU stores the low 32 bits only: the high half keeps whatever the
         * guest left there and a 4 GiB guest wraps. Readers take the whole
         * LARGE_INTEGER, so we write both halves (docs/compat.md W7).
         */
        put_le(&H32(w)->RequiredDumpSpace, 4, space);
        put_le(&H32(w)->RequiredDumpSpaceHigh, 4, space >> 32);
    }

    /* Straight into the header field, partial reads included, as QEMU. */
    if (!read_virt(w, kdbg + KDBG_MM_PFN_DATABASE_OFFSET, HFIELD_PTR(w, PfnDatabase),
                   HFIELD_SIZE(w, PfnDatabase))) {
        dump_host_warn("win-dump: failed to read MmPfnDatabase");
    }
    if (!read_ptr(w, kdbg + KDBG_KI_BUGCHECK_DATA_OFFSET, &bugcheck_data)) {
        dump_host_warn("win-dump: failed to read KiBugcheckData");
        return;
    }
    if (!read_virt(w, bugcheck_data, HFIELD_PTR(w, Bugcheck),
                   HFIELD_SIZE(w, Bugcheck))) {
        dump_host_warn("win-dump: failed to read bugcheck data");
        return;
    }
    /* No bugcheck recorded: the guest is alive. */
    if (!HGET(w, Bugcheck.BugcheckCode)) {
        HSET(w, Bugcheck.BugcheckCode, WIN_LIVE_SYSTEM_DUMP);
    }
}

static void build_context(const WinDump *w, const DumpX86CPUState *env, uint8_t *out)
{
    memset(out, 0, WIN_CTX_MAX);
    if (w->x64) {
        WinContext64 c = { 0 };

        c.ContextFlags = GUINT32_TO_LE(WIN_CTX64_ALL);
        c.MxCsr = GUINT32_TO_LE(env->mxcsr);
        c.SegCs = GUINT16_TO_LE(env->segs[DUMP_R_CS].selector);
        c.SegDs = GUINT16_TO_LE(env->segs[DUMP_R_DS].selector);
        c.SegEs = GUINT16_TO_LE(env->segs[DUMP_R_ES].selector);
        c.SegFs = GUINT16_TO_LE(env->segs[DUMP_R_FS].selector);
        c.SegGs = GUINT16_TO_LE(env->segs[DUMP_R_GS].selector);
        c.SegSs = GUINT16_TO_LE(env->segs[DUMP_R_SS].selector);
        c.EFlags = GUINT32_TO_LE((uint32_t)env->eflags);
        c.Dr0 = GUINT64_TO_LE(env->dr[0]);
        c.Dr1 = GUINT64_TO_LE(env->dr[1]);
        c.Dr2 = GUINT64_TO_LE(env->dr[2]);
        c.Dr3 = GUINT64_TO_LE(env->dr[3]);
        c.Dr6 = GUINT64_TO_LE(env->dr[6]);
        c.Dr7 = GUINT64_TO_LE(env->dr[7]);
        c.Rax = GUINT64_TO_LE(env->regs[DUMP_R_EAX]);
        c.Rcx = GUINT64_TO_LE(env->regs[DUMP_R_ECX]);
        c.Rdx = GUINT64_TO_LE(env->regs[DUMP_R_EDX]);
        c.Rbx = GUINT64_TO_LE(env->regs[DUMP_R_EBX]);
        c.Rsp = GUINT64_TO_LE(env->regs[DUMP_R_ESP]);
        c.Rbp = GUINT64_TO_LE(env->regs[DUMP_R_EBP]);
        c.Rsi = GUINT64_TO_LE(env->regs[DUMP_R_ESI]);
        c.Rdi = GUINT64_TO_LE(env->regs[DUMP_R_EDI]);
        c.R8 = GUINT64_TO_LE(env->regs[DUMP_R_R8]);
        c.R9 = GUINT64_TO_LE(env->regs[DUMP_R_R9]);
        c.R10 = GUINT64_TO_LE(env->regs[DUMP_R_R10]);
        c.R11 = GUINT64_TO_LE(env->regs[DUMP_R_R11]);
        c.R12 = GUINT64_TO_LE(env->regs[DUMP_R_R12]);
        c.R13 = GUINT64_TO_LE(env->regs[DUMP_R_R13]);
        c.R14 = GUINT64_TO_LE(env->regs[DUMP_R_R14]);
        c.R15 = GUINT64_TO_LE(env->regs[DUMP_R_R15]);
        c.Rip = GUINT64_TO_LE(env->eip);
        put_le(c.FltSave + WIN_CTX64_FLTSAVE_MXCSR, 4, env->mxcsr);
        memcpy(out, &c, sizeof(c));
    } else {
        WinContext32 c = { 0 };

        c.ContextFlags = GUINT32_TO_LE(WIN_CTX32_FULL_DBG);
        c.Dr0 = GUINT32_TO_LE((uint32_t)env->dr[0]);
        c.Dr1 = GUINT32_TO_LE((uint32_t)env->dr[1]);
        c.Dr2 = GUINT32_TO_LE((uint32_t)env->dr[2]);
        c.Dr3 = GUINT32_TO_LE((uint32_t)env->dr[3]);
        c.Dr6 = GUINT32_TO_LE((uint32_t)env->dr[6]);
        c.Dr7 = GUINT32_TO_LE((uint32_t)env->dr[7]);
        c.SegGs = GUINT32_TO_LE(env->segs[DUMP_R_GS].selector);
        c.SegFs = GUINT32_TO_LE(env->segs[DUMP_R_FS].selector);
        c.SegEs = GUINT32_TO_LE(env->segs[DUMP_R_ES].selector);
        c.SegDs = GUINT32_TO_LE(env->segs[DUMP_R_DS].selector);
        c.Edi = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_EDI]);
        c.Esi = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_ESI]);
        c.Ebx = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_EBX]);
        c.Edx = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_EDX]);
        c.Ecx = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_ECX]);
        c.Eax = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_EAX]);
        c.Ebp = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_EBP]);
        c.Eip = GUINT32_TO_LE((uint32_t)env->eip);
        c.SegCs = GUINT32_TO_LE(env->segs[DUMP_R_CS].selector);
        c.EFlags = GUINT32_TO_LE((uint32_t)env->eflags);
        c.Esp = GUINT32_TO_LE((uint32_t)env->regs[DUMP_R_ESP]);
        c.SegSs = GUINT32_TO_LE(env->segs[DUMP_R_SS].selector);
        memcpy(out, &c, sizeof(c));
    }
}

/*
 * Where QEMU's write of CPU i's CONTEXT would land. The read QEMU does
 * first (to save the old bytes) fails exactly where a page is unmapped or
 * not memory, so the same test gives its error.
 */
static bool place_context(WinDump *w, uint32_t cpu, uint64_t vaddr, Error **errp)
{
    uint8_t scratch[WIN_PAGE_SIZE];
    size_t done = 0;

    /* The pages are checked before any overlay lands, as QEMU saves first. */
    while (done < w->ctx_size) {
        size_t n = MIN(w->ctx_size - done, WIN_PAGE_SIZE - ((vaddr + done) & 0xfff));
        uint64_t paddr;

        if (!translate(w, vaddr + done, &paddr) || !read_phys(w, paddr, scratch, n)) {
            error_setg(errp, "win-dump: failed to save CPU #%" PRIu32 " context", cpu);
            return false;
        }
        done += n;
    }
    for (done = 0; done < w->ctx_size;) {
        size_t n = MIN(w->ctx_size - done, WIN_PAGE_SIZE - ((vaddr + done) & 0xfff));
        WinOverlay o = { .len = n, .ctx_off = done, .cpu = cpu,
                         .seq = w->overlays->len };

        translate(w, vaddr + done, &o.paddr);
        g_array_append_val(w->overlays, o);
        done += n;
    }
    return true;
}

static bool patch_contexts(WinDump *w, const DumpPlan *s, Error **errp)
{
    uint64_t kdbg = HGET(w, KdDebuggerDataBlock);
    uint64_t nproc = HGET(w, NumberProcessors);
    uint64_t kpb;
    uint8_t off_le[2];
    uint16_t off;

    if (!read_ptr(w, kdbg + KDBG_KI_PROCESSOR_BLOCK_OFFSET, &kpb)) {
        error_setg(errp, "win-dump: failed to read KiProcessorBlock");
        return false;
    }
    if (!read_virt(w, kdbg + KDBG_OFFSET_PRCB_CONTEXT_OFFSET, off_le, 2)) {
        error_setg(errp, "win-dump: failed to read OffsetPrcbContext");
        return false;
    }
    off = get_le(off_le, 2);

    /* One CONTEXT per vCPU we have, whatever NumberProcessors claims. */
    w->ctx = g_malloc0_n(MAX(s->nr_cpus, 1), WIN_CTX_MAX);
    for (int i = 0; i < s->nr_cpus; i++) {
        uint64_t prcb, ctx;

        if ((uint64_t)i >= nproc) {
            dump_host_warn("win-dump: number of QEMU CPUs is bigger than "
                           "NumberProcessors (%" PRIu64 ") in guest Windows", nproc);
            break;
        }
        if (!read_ptr(w, kpb + (uint64_t)i * ptr_size(w), &prcb)) {
            error_setg(errp, "win-dump: failed to read CPU #%d PRCB location", i);
            return false;
        }
        if (!read_ptr(w, prcb + off, &ctx)) {
            error_setg(errp, "win-dump: failed to read CPU #%d ContextFrame location",
                       i);
            return false;
        }
        build_context(w, &s->cpus[i], w->ctx[i]);
        if (!place_context(w, i, ctx, errp)) {
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* Our own checks of the guest's run table (QEMU has none)                 */
/* ---------------------------------------------------------------------- */

typedef struct WinRun {
    uint64_t base;      /* bytes */
    uint64_t size;
} WinRun;

static void run_at(const WinDump *w, uint32_t i, uint64_t *base_page, uint64_t *count)
{
    if (w->x64) {
        *base_page = get_le(&H64(w)->PhysicalMemoryBlock.Run[i].BasePage, 8);
        *count = get_le(&H64(w)->PhysicalMemoryBlock.Run[i].PageCount, 8);
    } else {
        *base_page = get_le(&H32(w)->PhysicalMemoryBlock.Run[i].BasePage, 4);
        *count = get_le(&H32(w)->PhysicalMemoryBlock.Run[i].PageCount, 4);
    }
}

static int run_cmp(const void *a, const void *b)
{
    const WinRun *x = a, *y = b;

    return x->base < y->base ? -1 : x->base > y->base;
}

/*
 * QEMU reads run entries past the array for a large NumberOfRuns, writes
 * zeros (or device registers) for runs outside RAM, and writes a page range
 * twice when runs overlap. A header like that was not written by Windows;
 * refuse it before a byte is written.
 */
static bool check_runs(const WinDump *w, Error **errp)
{
    uint32_t max = w->x64 ? WIN_DUMP_RUNS64 : WIN_DUMP_RUNS32;
    uint32_t nruns = HGET(w, PhysicalMemoryBlock.NumberOfRuns);
    WinRun runs[WIN_DUMP_RUNS32];
    uint32_t n = 0;

    if (w->x64) {
        uint64_t pages = get_le(&H64(w)->PhysicalMemoryBlock.NumberOfPages, 8);

        if (pages > ((uint64_t)INT64_MAX - WIN_DUMP_HDR64_SIZE) >> WIN_PAGE_SHIFT) {
            error_setg(errp, "win-dump: NumberOfPages (%" PRIu64 ") is too large",
                       pages);
            return false;
        }
    }
    if (nruns > max) {
        error_setg(errp, "win-dump: NumberOfRuns (%" PRIu32 ") is more than the %" PRIu32
                   " runs the header holds", nruns, max);
        return false;
    }
    for (uint32_t i = 0; i < nruns; i++) {
        uint64_t base_page, count;

        run_at(w, i, &base_page, &count);
        if (!count) {
            continue;
        }
        if (base_page >> (64 - WIN_PAGE_SHIFT) || count >> (64 - WIN_PAGE_SHIFT) ||
            (base_page << WIN_PAGE_SHIFT) + (count << WIN_PAGE_SHIFT) <
            (base_page << WIN_PAGE_SHIFT) ||
            !dump_guest_blocks_is_ram(w->blocks, base_page << WIN_PAGE_SHIFT,
                                      count << WIN_PAGE_SHIFT)) {
            error_setg(errp, "win-dump: memory run #%" PRIu32 " (BasePage 0x%" PRIx64
                       ", PageCount 0x%" PRIx64 ") is not guest RAM", i, base_page,
                       count);
            return false;
        }
        runs[n].base = base_page << WIN_PAGE_SHIFT;
        runs[n].size = count << WIN_PAGE_SHIFT;
        n++;
    }
    qsort(runs, n, sizeof(runs[0]), run_cmp);
    for (uint32_t i = 1; i < n; i++) {
        if (runs[i].base < runs[i - 1].base + runs[i - 1].size) {
            error_setg(errp, "win-dump: memory runs overlap at guest-physical 0x%"
                       PRIx64, runs[i].base);
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                  */
/* ---------------------------------------------------------------------- */

static int overlay_addr_cmp(const void *a, const void *b)
{
    const WinOverlay *x = a, *y = b;

    return x->paddr < y->paddr ? -1 : x->paddr > y->paddr;
}

static int overlay_seq_cmp(const void *a, const void *b)
{
    const WinOverlay *x = a, *y = b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The overlays that touch [paddr, paddr+len), in application order. Each
 * overlay lies within one page, so only those starting less than a page
 * before paddr can reach into the range.
 */
static size_t overlays_in(const WinDump *w, uint64_t paddr, uint64_t len, GArray *hits)
{
    const WinOverlay *ov = (const WinOverlay *)w->by_addr->data;
    uint64_t from = paddr > WIN_PAGE_SIZE ? paddr - WIN_PAGE_SIZE : 0;
    size_t lo = 0, hi = w->by_addr->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (ov[mid].paddr < from) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    g_array_set_size(hits, 0);
    for (size_t i = lo; i < w->by_addr->len && ov[i].paddr < paddr + len; i++) {
        if (ov[i].paddr + ov[i].len > paddr) {
            g_array_append_val(hits, ov[i]);
        }
    }
    g_array_sort(hits, overlay_seq_cmp);
    return hits->len;
}

static bool write_runs(WinDump *w, DumpJob *job, Error **errp)
{
    uint32_t nruns = HGET(w, PhysicalMemoryBlock.NumberOfRuns);
    g_autoptr(GArray) hits = g_array_new(FALSE, FALSE, sizeof(WinOverlay));

    for (uint32_t i = 0; i < nruns; i++) {
        uint64_t base_page, count, addr, left;

        run_at(w, i, &base_page, &count);
        addr = base_page << WIN_PAGE_SHIFT;
        left = count << WIN_PAGE_SHIFT;
        while (left) {
            const DumpGuestBlock *rb = dump_guest_blocks_find(w->blocks, addr);
            const uint8_t *src;
            uint64_t n;

            if (dump_check_cancel(job, errp)) {
                return false;
            }
            /* check_runs proved the run is RAM; a block edge splits the write. */
            g_assert(rb);
            n = MIN(MIN(left, (uint64_t)WIN_CHUNK), rb->target_end - addr);
            if (!w->bounce && dump_plan_is_live(w->plan)) {
                w->bounce = g_malloc(WIN_CHUNK);
            }
            src = dump_plan_ram(w->plan, rb, addr, n, w->bounce);
            if (overlays_in(w, addr, n, hits)) {
                if (!w->bounce) {
                    w->bounce = g_malloc(WIN_CHUNK);
                }
                if (src != w->bounce) {
                    memcpy(w->bounce, src, n);
                }
                apply_overlays(w, addr, w->bounce, n, (const WinOverlay *)hits->data,
                               hits->len);
                src = w->bounce;
            }
            if (!dump_output_write(job->out, src, n)) {
                error_setg_errno(errp, errno, "win-dump: failed to save memory");
                return false;
            }
            /* check_runs refused overlapping runs: each page is read once. */
            dump_guest_blocks_release(w->blocks, addr, n);
            dump_progress_add(job, n);
            addr += n;
            left -= n;
        }
    }
    return true;
}

static bool win_prepare(DumpJob *job, Error **errp)
{
    const DumpPlan *s = job->plan;
    WinDump *w = g_new0(WinDump, 1);

    w->overlays = g_array_new(FALSE, FALSE, sizeof(WinOverlay));
    w->by_addr = g_array_new(FALSE, FALSE, sizeof(WinOverlay));
    w->plan = s;
    w->blocks = &s->guest_phys_blocks;
    job->writer_state = w;
    /*
     * Nothing is checked here: QEMU 7.2 checks the header inside the dump
     * proper, so its errors come with DUMP_COMPLETED, and so do ours.
     */
    return true;
}

static void win_cleanup(DumpJob *job)
{
    WinDump *w = job->writer_state;

    if (!w) {
        return;
    }
    g_array_free(w->overlays, TRUE);
    g_array_free(w->by_addr, TRUE);
    g_free(w->ctx);
    g_free(w->bounce);
    g_free(w);
    job->writer_state = NULL;
}

static bool win_write(DumpJob *job, Error **errp)
{
    const DumpPlan *s = job->plan;
    WinDump *w = job->writer_state;
    uint64_t space;

    if (s->guest_note_size != WIN_DUMP_NOTE_SIZE64 &&
        s->guest_note_size != WIN_DUMP_NOTE_SIZE32) {
        error_setg(errp, "win-dump: invalid vmcoreinfo note size");
        return false;
    }
    if (!check_header(w, s, errp)) {
        return false;
    }
    if (s->nr_cpus < 1) {
        error_setg(errp, "win-dump: the machine has no vCPU");
        return false;
    }
    w->sys_env = s->cpus[0];
    w->sys_env.cr[3] = HGET(w, DirectoryTableBase);

    if (!check_kdbg(w, errp)) {
        return false;
    }
    patch_header(w);
    if (!patch_contexts(w, s, errp)) {
        return false;
    }
    g_array_append_vals(w->by_addr, w->overlays->data, w->overlays->len);
    g_array_sort(w->by_addr, overlay_addr_cmp);

    if (!check_runs(w, errp)) {
        return false;
    }
    /* query-dump's total becomes RequiredDumpSpace, as in QEMU (the whole value). */
    if (w->x64) {
        space = get_le(&H64(w)->RequiredDumpSpace, 8);
    } else {
        uint64_t pages = get_le(&H32(w)->PhysicalMemoryBlock.NumberOfPages, 4);

        space = WIN_DUMP_HDR32_SIZE + (pages << WIN_PAGE_SHIFT);
    }
    atomic_store(&job->total_size, (int64_t)space);

    if (!dump_output_write(job->out, w->hdr, w->hdr_size)) {
        error_setg_errno(errp, errno, "win-dump: failed to write header");
        return false;
    }
    atomic_store(&job->written_size, (int64_t)w->hdr_size);
    return write_runs(w, job, errp);
}

const DumpWriter dump_win_dmp_writer = {
    .prepare = win_prepare,
    .write = win_write,
    .cleanup = win_cleanup,
};
