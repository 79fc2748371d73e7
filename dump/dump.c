/* dump-guest-memory: validation, the dump plan, the worker, progress and events. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <glib.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-host.h"
#include "qapi-commands.h"
#include "qapi-events.h"
#include "qemu/bswap.h"
#include "sysemu/dump-host.h"
#include "sysemu/dump-core.h"

#define EM_386 3
#define EM_X86_64 62
#define ELFCLASS64 2

/* Upper bound for a guest-supplied note, as in QEMU (3.10). */
#define GUEST_NOTE_MAX (1u << 20)

#ifdef CONFIG_LZO
#define HAVE_LZO true
#else
#define HAVE_LZO false
#endif
#ifdef CONFIG_SNAPPY
#define HAVE_SNAPPY true
#else
#define HAVE_SNAPPY false
#endif
#ifdef CONFIG_ZSTD
#define HAVE_ZSTD true
#else
#define HAVE_ZSTD false
#endif

#define DUMP_DH_COMPRESSED_ZLIB   0x1
#define DUMP_DH_COMPRESSED_LZO    0x2
#define DUMP_DH_COMPRESSED_SNAPPY 0x4
#define DUMP_DH_COMPRESSED_ZSTD   0x20

typedef struct FormatRow {
    DumpFormatInfo info;
    const char *name;            /* QMP spelling, for "... is not available now" */
} FormatRow;

/*
 * Indexed by the enum: the one place that ties a format to its writer,
 * header flag, sink kind and availability (compiled in or not).
 */
#define ROW(fmt, writer, flag, raw, avail, name) \
    [DUMP_GUEST_MEMORY_FORMAT_##fmt] = \
        { { DUMP_GUEST_MEMORY_FORMAT_##fmt, writer, flag, raw, avail }, name }

static const FormatRow format_rows[DUMP_GUEST_MEMORY_FORMAT__MAX] = {
    ROW(ELF, &dump_elf_writer, 0, false, true, "elf"),
    ROW(KDUMP_ZLIB, &dump_kdump_writer, DUMP_DH_COMPRESSED_ZLIB, false, true,
        "kdump-zlib"),
    ROW(KDUMP_LZO, &dump_kdump_writer, DUMP_DH_COMPRESSED_LZO, false, HAVE_LZO,
        "kdump-lzo"),
    ROW(KDUMP_SNAPPY, &dump_kdump_writer, DUMP_DH_COMPRESSED_SNAPPY, false,
        HAVE_SNAPPY, "kdump-snappy"),
    /* 8.2's raw formats name the flattened one in their errors, as QEMU. */
    ROW(KDUMP_RAW_ZLIB, &dump_kdump_writer, DUMP_DH_COMPRESSED_ZLIB, true, true,
        "kdump-zlib"),
    ROW(KDUMP_RAW_LZO, &dump_kdump_writer, DUMP_DH_COMPRESSED_LZO, true, HAVE_LZO,
        "kdump-lzo"),
    ROW(KDUMP_RAW_SNAPPY, &dump_kdump_writer, DUMP_DH_COMPRESSED_SNAPPY, true,
        HAVE_SNAPPY, "kdump-snappy"),
    ROW(WIN_DMP, &dump_win_dmp_writer, 0, false, true, "win-dmp"),
    ROW(KDUMP_ZSTD, &dump_kdump_writer, DUMP_DH_COMPRESSED_ZSTD, false, HAVE_ZSTD,
        "kdump-zstd"),
    ROW(KDUMP_RAW_ZSTD, &dump_kdump_writer, DUMP_DH_COMPRESSED_ZSTD, true,
        HAVE_ZSTD, "kdump-zstd"),
};

#undef ROW

const DumpFormatInfo *dump_format_info(DumpGuestMemoryFormat format)
{
    if ((unsigned)format >= DUMP_GUEST_MEMORY_FORMAT__MAX) {
        return NULL;
    }
    return &format_rows[format].info;
}

/* ---------------------------------------------------------------------- */
/* Global dump state                                                       */
/* ---------------------------------------------------------------------- */

/*
 * One dump at a time, as QEMU: the current or last plan and job. The job
 * outlives the dump so query-dump can report the last counters; the rest
 * is freed at the end. Both are touched on the main thread only, except
 * what the worker is handed (the plan to read, the job's sink, progress
 * and cancel flag).
 */
static DumpPlan dump_plan;
static DumpJob dump_job = { .plan = &dump_plan, .fdset_dup = -1 };
static _Atomic DumpStatus dump_status = DUMP_STATUS_NONE;

/*
 * dump_shutdown interrupts a write blocked on a full pipe with this signal;
 * its handler does nothing, the EINTR is what matters (dump_output_set_cancel).
 */
#define DUMP_CANCEL_SIGNAL (SIGRTMIN + 5)

static _Atomic int dump_threads_wanted;   /* -dump-threads, set before any dump */
static atomic_bool dump_exit_requested;   /* dump_cancel_async: no new dump runs */

int dump_thread_count(void)
{
    int n = atomic_load(&dump_threads_wanted);
    const char *env;

    if (n > 0) {
        return n;
    }
    env = g_getenv("GUESTDUMP_DUMP_THREADS");
    if (env) {
        gint64 v = g_ascii_strtoll(env, NULL, 10);

        if (v > 0 && v <= 256) {
            return (int)v;
        }
    }
    n = (int)g_get_num_processors();
    return n > 0 ? n : 1;
}

void dump_set_thread_count(int n)
{
    atomic_store(&dump_threads_wanted, n > 0 ? n : 0);
}

bool dump_in_progress(void)
{
    return atomic_load(&dump_status) == DUMP_STATUS_ACTIVE;
}

bool dump_check_cancel(DumpJob *job, Error **errp)
{
    if (atomic_load(&job->cancel)) {
        error_setg(errp, "dump: cancelled");
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* Filter arithmetic                                                        */
/* ---------------------------------------------------------------------- */

/*
 * The filter as an unsigned half-open range. The end is clamped at 2^64-1
 * so that a huge begin+length cannot wrap around and re-include low RAM.
 */
static void filter_range(const DumpPlan *s, uint64_t *start, uint64_t *end)
{
    uint64_t b = (uint64_t)s->begin;
    uint64_t l = (uint64_t)s->length;

    *start = b;
    *end = (b + l < b) ? UINT64_MAX : b + l;
}

/* Bytes of block inside the filter (all of it without one). */
static uint64_t block_dump_size(const DumpPlan *s, const DumpGuestBlock *b)
{
    uint64_t fs, fe, lo, hi;

    if (!s->has_filter) {
        return b->target_end - b->target_start;
    }
    filter_range(s, &fs, &fe);
    lo = MAX(fs, b->target_start);
    hi = MIN(fe, b->target_end);
    return hi > lo ? hi - lo : 0;
}

static uint64_t dump_total_size(const DumpPlan *s)
{
    uint64_t total = 0;

    for (size_t i = 0; i < s->guest_phys_blocks.num; i++) {
        total += block_dump_size(s, &s->guest_phys_blocks.blocks[i]);
    }
    return total;
}

/* ---------------------------------------------------------------------- */
/* The guest note (vmcoreinfo device)                                      */
/* ---------------------------------------------------------------------- */

/*
 * QEMU reads the note with cpu_physical_memory_read, which yields zeros
 * outside RAM; reproduce that instead of refusing the range.
 */
static void read_guest_phys_or_zero(const DumpGuestBlockList *blocks, uint64_t gpa,
                                    uint8_t *buf, uint64_t len)
{
    memset(buf, 0, len);
    for (size_t i = 0; i < blocks->num; i++) {
        const DumpGuestBlock *b = &blocks->blocks[i];
        uint64_t lo = MAX(gpa, b->target_start);
        uint64_t hi = MIN(gpa + len, b->target_end);

        if (gpa + len < gpa) {
            hi = b->target_end;
        }
        if (hi > lo) {
            memcpy(buf + (lo - gpa), b->host_addr + (lo - b->target_start), hi - lo);
        }
    }
}

static size_t note_size_of(uint32_t namesz, uint32_t descsz)
{
    return 12 + ((namesz + 3ull) & ~3ull) + ((descsz + 3ull) & ~3ull);
}

/*
 * Linux prints NUMBER(phys_base) with %ld (decimal); QEMU parses it as hex
 * and gets a wrong value. We take decimal, and hex when 0x-prefixed, so
 * arm64-style values keep working (docs/compat.md).
 */
static bool parse_phys_base(const char *s, uint64_t *val)
{
    const char *p = s;
    char *end = NULL;
    int base = 10;
    bool neg = false;
    guint64 v;

    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (!g_ascii_isxdigit(*p)) {
        return false;
    }
    errno = 0;
    v = g_ascii_strtoull(p, &end, base);
    if (errno || *end != '\0') {
        return false;
    }
    *val = neg ? -v : v;
    return true;
}

static void vmcoreinfo_update_phys_base(DumpPlan *s, uint8_t *note,
                                        uint32_t namesz, uint32_t descsz)
{
    char *desc = (char *)note + 12 + ((namesz + 3u) & ~3u);
    const char *prefix = "NUMBER(phys_base)=";
    g_auto(GStrv) lines = NULL;

    if (namesz != sizeof("VMCOREINFO") || memcmp(note + 12, "VMCOREINFO",
                                                  sizeof("VMCOREINFO")) != 0) {
        return;
    }
    /* As QEMU: this NUL lands in the note's padding and is dumped too. */
    desc[descsz] = '\0';
    if (s->dump_info.d_machine != EM_X86_64) {
        return;
    }
    lines = g_strsplit(desc, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        uint64_t v;

        if (!g_str_has_prefix(lines[i], prefix)) {
            continue;
        }
        if (parse_phys_base(lines[i] + strlen(prefix), &v)) {
            s->dump_info.phys_base = v;
        } else {
            dump_host_warn("Failed to read %s", prefix);
        }
        break;
    }
}

/* Reference 3.10: every problem is a warning and the note is dropped. */
static uint8_t *get_guest_note(DumpPlan *s, size_t *note_len)
{
    DumpVmcoreinfo info;
    const DumpVmcoreinfo *vmci = &info;
    uint8_t *buf;
    uint32_t namesz, descsz;
    size_t len;

    *note_len = 0;
    if (!dump_host_vmcoreinfo(&info)) {
        return NULL;
    }
    if (!vmci->has_vmcoreinfo) {
        dump_host_warn("guest note is not present");
        return NULL;
    }
    if (vmci->size < 12 || vmci->size > GUEST_NOTE_MAX) {
        dump_host_warn("guest note size is invalid: %" PRIu32, vmci->size);
        return NULL;
    }
    if (vmci->guest_format != DUMP_VMCOREINFO_FORMAT_ELF) {
        dump_host_warn("guest note format is unsupported: %" PRIu16,
                       vmci->guest_format);
        return NULL;
    }
    /* One spare byte: the NUL after the descriptor may land there. */
    buf = g_malloc0(vmci->size + 1);
    read_guest_phys_or_zero(&s->guest_phys_blocks, vmci->paddr, buf, vmci->size);
    namesz = ldl_le_p(buf);
    descsz = ldl_le_p(buf + 4);
    len = note_size_of(namesz, descsz);
    if (namesz > GUEST_NOTE_MAX || descsz > GUEST_NOTE_MAX || len > vmci->size) {
        dump_host_warn("Invalid guest note header");
        g_free(buf);
        return NULL;
    }
    vmcoreinfo_update_phys_base(s, buf, namesz, descsz);
    *note_len = len;
    return buf;
}

/* ---------------------------------------------------------------------- */
/* Building the plan                                                        */
/* ---------------------------------------------------------------------- */

bool dump_plan_read_phys(const DumpPlan *plan, uint64_t gpa, void *buf, size_t len)
{
    const DumpGuestBlockList *blocks = &plan->guest_phys_blocks;
    uint8_t *out = buf;

    if (!dump_guest_blocks_is_ram(blocks, gpa, len)) {
        return false;
    }
    while (len) {
        const DumpGuestBlock *b = dump_guest_blocks_find(blocks, gpa);
        uint64_t n = MIN(len, b->target_end - gpa);

        memcpy(out, b->host_addr + (gpa - b->target_start), n);
        out += n;
        gpa += n;
        len -= n;
    }
    return true;
}

bool dump_plan_read_virt(const DumpPlan *plan, const DumpX86CPUState *env,
                         uint64_t vaddr, void *buf, size_t len)
{
    uint8_t *out = buf;

    while (len) {
        size_t n = MIN(len, 4096 - (vaddr & 4095));
        uint64_t pa;

        if (!x86_virt_to_phys(&plan->guest_phys_blocks, env, vaddr, &pa) ||
            !dump_plan_read_phys(plan, pa, out, n)) {
            return false;
        }
        out += n;
        vaddr += n;
        len -= n;
    }
    return true;
}

static void dump_plan_free(DumpPlan *plan)
{
    dump_guest_blocks_free(&plan->guest_phys_blocks);
    dump_mapping_list_free(plan->list);
    g_free(plan->cpus);
    g_free(plan->notes);
    dump_linux_mm_free(plan->linux_mm);
    memset(plan, 0, sizeof(*plan));
}

/*
 * A new dump (or a failed start, which QEMU reports as a reset state):
 * zero counters, no cancel. The fd set dup an open just recorded stays.
 */
static void dump_job_reset(DumpJob *job)
{
    atomic_store(&job->total_size, 0);
    atomic_store(&job->written_size, 0);
    /* A signal that came before this reset still cancels the dump. */
    atomic_store(&job->cancel, atomic_load(&dump_exit_requested));
    job->started = false;
    job->resume = false;
}

/* Everything but the counters, which query-dump still reports. */
static void dump_job_release(DumpJob *job)
{
    if (job->prepared && job->plan->fmt->writer->cleanup) {
        job->plan->fmt->writer->cleanup(job);
    }
    job->prepared = false;
    job->writer_state = NULL;
    dump_output_free(job->out);
    job->out = NULL;
    dump_plan_free(&dump_plan);
}

static bool dump_build_notes(DumpPlan *s)
{
    size_t cpu_size = dump_arch_note_size(s->dump_info.d_class,
                                        s->dump_info.d_machine, s->nr_cpus);
    size_t guest_len;
    g_autofree uint8_t *guest = get_guest_note(s, &guest_len);
    size_t written;

    s->note_size = cpu_size + guest_len;
    s->notes = g_malloc0(s->note_size ? s->note_size : 1);
    written = dump_arch_write_notes(s->notes, s->cpus, s->nr_cpus,
                              s->dump_info.d_machine);
    g_assert(written == cpu_size);
    if (guest_len) {
        memcpy(s->notes + cpu_size, guest, guest_len);
        s->guest_note = s->notes + cpu_size;
        s->guest_note_size = guest_len;
    }
    return true;
}

/* Reference 2.4, from the point where the guest is paused. */
static bool dump_init(DumpJob *job, DumpPlan *s, bool paging, Error **errp)
{
    s->paging = paging;
    s->cpus = dump_host_cpu_states(&s->nr_cpus);
    dump_guest_blocks_collect(&s->guest_phys_blocks);
    s->total_size = dump_total_size(s);
    atomic_store(&job->total_size, (int64_t)s->total_size);
    if (s->total_size == 0) {
        error_setg(errp, "dump: no guest memory to dump");
        return false;
    }
    if (!dump_arch_get_info(&s->dump_info, &s->guest_phys_blocks, s->cpus,
                            s->nr_cpus, errp)) {
        return false;
    }
    if (!s->dump_info.page_size) {
        s->dump_info.page_size = 4096;
    }
    dump_build_notes(s);
    /* Before anything is written: a level the guest cannot serve fails here. */
    if (s->has_dump_level &&
        !dump_linux_mm_parse(s, s->dump_level, &s->linux_mm, errp)) {
        return false;
    }

    s->list = dump_mapping_list_new();
    dump_mapping_list_set_cancel(s->list, &job->cancel);
    if (paging) {
        if (!dump_get_guest_memory_mapping(s->list, &s->guest_phys_blocks, s->cpus,
                                           s->nr_cpus, errp)) {
            return false;
        }
    } else {
        dump_get_guest_simple_memory_mapping(s->list, &s->guest_phys_blocks);
    }

    if (s->fmt->format == DUMP_GUEST_MEMORY_FORMAT_ELF && s->has_filter) {
        dump_mapping_filter(s->list, s->begin, s->length);
    }
    job->prepared = true;
    return s->fmt->writer->prepare(job, errp);
}

/* ---------------------------------------------------------------------- */
/* Running and finishing                                                    */
/* ---------------------------------------------------------------------- */

/* Writes the dump and closes the sink; runs on the caller or the worker. */
static bool dump_run(DumpJob *job, Error **errp)
{
    const DumpFormatInfo *fmt = job->plan->fmt;
    DumpOutput *out = job->out;
    bool ok;

    if (!dump_output_start(out)) {
        /* 7.2's text, without strerror like its other kdump texts */
        error_setg(errp, "dump: failed to write start flat header");
        ok = false;
    } else {
        ok = fmt->writer->write(job, errp);
    }

    job->out = NULL;
    if (ok) {
        if (!dump_output_finish(out)) {
            if (fmt->kdump_flag && !fmt->kdump_raw) {
                error_setg(errp, "dump: failed to write end flat header");
            } else {
                error_setg_errno(errp, errno, "dump: failed to save memory");
            }
            ok = false;
        }
    } else {
        dump_output_free(out);
    }
    if (!ok && errp && atomic_load(&job->cancel)) {
        /*
         * One text for a cancelled dump, whichever step noticed: a write
         * interrupted on a full pipe fails with ECANCELED, a batch sees
         * the flag, the sink's end marker may fail after either.
         */
        error_free(*errp);
        *errp = NULL;
        error_setg(errp, "dump: cancelled");
    }
    return ok;
}

/* The dump's fd from an fd set is closed: the set may go now. */
static void dump_release_fdset_dup(DumpJob *job)
{
    if (job->fdset_dup >= 0) {
        dump_host_fd_closed(job->fdset_dup);
        job->fdset_dup = -1;
    }
}

/*
 * The single place that ends a dump (main thread): file removal, resume,
 * final status and the event. err is consumed; returned to errp as well.
 */
static void dump_finish(DumpJob *job, Error *err, Error **errp)
{
    DumpQueryResult result;

    dump_job_release(job);
    dump_release_fdset_dup(job);
    if (err && job->created_path) {
        unlink(job->created_path);
    }
    g_clear_pointer(&job->created_path, g_free);
    atomic_store(&dump_status, err ? DUMP_STATUS_FAILED : DUMP_STATUS_COMPLETED);
    /* QEMU's order: DUMP_COMPLETED, then the guest resumes (RESUME event). */
    if (job->started) {
        job->started = false;
        result.status = atomic_load(&dump_status);
        result.completed = atomic_load(&job->written_size);
        result.total = atomic_load(&job->total_size);
        qapi_event_send_dump_completed(&result,
                                       err ? error_get_pretty(err) : NULL);
    }
    if (job->resume) {
        job->resume = false;
        dump_host_vm_resume();
    }
    dump_host_dump_end();
    error_propagate(errp, err);
}

static void dump_worker_done(void *opaque)
{
    DumpJob *job = opaque;
    Error *err;

    if (!job->thread) {
        return;                     /* dump_shutdown already finished it */
    }
    g_thread_join(job->thread);
    job->thread = NULL;
    err = job->thread_err;
    job->thread_err = NULL;
    dump_finish(job, err, NULL);
}

static gpointer dump_worker(gpointer opaque)
{
    DumpJob *job = opaque;
    Error *err = NULL;

    job->worker_tid = pthread_self();
    atomic_store(&job->worker_tid_set, true);

    dump_run(job, &err);
    job->thread_err = err;
    atomic_store(&job->worker_running, false);
    /* Resume and the event happen on the main loop, never on this thread. */
    dump_host_run_on_main(dump_worker_done, job);
    return NULL;
}

void dump_cancel_async(void)
{
    atomic_store(&dump_exit_requested, true);
    atomic_store(&dump_job.cancel, true);
}

void dump_shutdown(void)
{
    DumpJob *job = &dump_job;
    Error *err;

    if (!job->thread) {
        return;
    }
    atomic_store(&job->cancel, true);
    /* Batches check the flag; a write stuck on a pipe needs the signal. */
    while (atomic_load(&job->worker_running)) {
        if (atomic_load(&job->worker_tid_set)) {
            pthread_kill(job->worker_tid, DUMP_CANCEL_SIGNAL);
        }
        g_usleep(10 * 1000);
    }
    atomic_store(&job->worker_tid_set, false);
    g_thread_join(job->thread);
    job->thread = NULL;
    err = job->thread_err;
    job->thread_err = NULL;
    /* The process is exiting: no point restarting the guest. */
    job->resume = false;
    dump_finish(job, err, NULL);
}

/* ---------------------------------------------------------------------- */
/* The commands                                                             */
/* ---------------------------------------------------------------------- */

static void dump_cancel_signal_handler(int sig)
{
}

static void dump_signals_once(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        struct sigaction sa = { .sa_handler = dump_cancel_signal_handler };

        /* A reader that goes away must fail the dump with EPIPE, not kill us. */
        signal(SIGPIPE, SIG_IGN);
        /* No SA_RESTART: the blocked write must return EINTR. */
        sigemptyset(&sa.sa_mask);
        sigaction(DUMP_CANCEL_SIGNAL, &sa, NULL);
        g_once_init_leave(&done, 1);
    }
}

/* Reference 2.1 steps 8-10, for a format the table marks unavailable. */
static void format_unavailable(const FormatRow *row, Error **errp)
{
    if (row->info.format == DUMP_GUEST_MEMORY_FORMAT_WIN_DMP) {
        /* The honest text: we are x86-64, the writer is not built (QEMU master). */
        error_setg(errp, "x86-64 Windows guest dump not built-in");
    } else {
        error_setg(errp, "%s is not available now", row->name);
    }
}

/*
 * dump_init's argument checks (reference 2.4 steps 5, 8, 9), run before
 * anything is created or paused.
 */
static bool dump_check_filter(DumpPlan *s, Error **errp)
{
    if (!s->has_filter) {
        dump_guest_blocks_collect(&s->guest_phys_blocks);
        if (dump_total_size(s) == 0) {
            dump_guest_blocks_free(&s->guest_phys_blocks);
            error_setg(errp, "dump: no guest memory to dump");
            return false;
        }
        dump_guest_blocks_free(&s->guest_phys_blocks);
        return true;
    }
    if (s->length == 0) {
        error_setg(errp, "Invalid parameter '%s'", "length");
        return false;
    }
    if (s->length < 0) {
        error_setg(errp, "dump: no guest memory to dump");
        return false;
    }
    dump_guest_blocks_collect(&s->guest_phys_blocks);
    if (s->begin >= 0 && dump_total_size(s) == 0) {
        dump_guest_blocks_free(&s->guest_phys_blocks);
        error_setg(errp, "dump: no guest memory to dump");
        return false;
    }
    dump_guest_blocks_free(&s->guest_phys_blocks);
    if (s->begin < 0) {
        error_setg(errp, "Invalid parameter '%s'", "begin");
        return false;
    }
    return true;
}

/* file:PATH with O_EXCL first, so we know whether a failure may unlink it. */
static int dump_open_file(DumpJob *job, const char *path, char **created,
                          Error **errp)
{
    int fd;

    if (g_str_has_prefix(path, "/dev/fdset/")) {
        fd = dump_host_open(path, O_WRONLY | O_CREAT | O_TRUNC, S_IRUSR, errp);
        /*
         * The dup shares the client's file offset, which ftruncate leaves
         * where it was: QEMU then writes after a hole. Start at 0 instead.
         */
        if (fd >= 0) {
            lseek(fd, 0, SEEK_SET);
            job->fdset_dup = fd;
        }
        return fd;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, S_IRUSR);
    if (fd >= 0) {
        *created = g_strdup(path);
        return fd;
    }
    if (errno == EEXIST) {
        /*
         * O_NONBLOCK: a FIFO nobody reads would block this open, and with
         * it the monitor, for good (7.2 does); it fails with ENXIO instead.
         * Writes block as usual once the flag is cleared below.
         */
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK,
                  S_IRUSR);
        if (fd < 0 && errno == ENXIO) {
            error_setg(errp, "Could not open '%s': a FIFO that no process is "
                       "reading", path);
            return -1;
        }
        if (fd >= 0) {
            int fl = fcntl(fd, F_GETFL);

            if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                error_setg_errno(errp, errno, "Could not open '%s'", path);
                close(fd);
                return -1;
            }
        }
    }
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not open '%s'", path);
    }
    return fd;
}

void qmp_dump_guest_memory(bool paging, const char *protocol, bool has_detach,
                           bool detach, bool has_begin, int64_t begin,
                           bool has_length, int64_t length, bool has_format,
                           DumpGuestMemoryFormat format, bool has_dump_level,
                           int64_t dump_level, Error **errp)
{
    DumpJob *job = &dump_job;
    DumpPlan *s = &dump_plan;
    DumpPlan probe = { 0 };
    const FormatRow *row;
    const char *p;
    Error *err = NULL;
    char *created = NULL;
    int fd = -1;

    dump_signals_once();
    if (dump_host_vm_incoming()) {
        error_setg(errp, "Dump not allowed during incoming migration.");
        return;
    }
    if (dump_in_progress()) {
        error_setg(errp, "There is a dump in process, please wait.");
        return;
    }
    if (!has_format) {
        format = DUMP_GUEST_MEMORY_FORMAT_ELF;
    }
    if ((unsigned)format >= DUMP_GUEST_MEMORY_FORMAT__MAX) {
        error_setg(errp, "Invalid parameter '%s'", "format");
        return;
    }
    row = &format_rows[format];
    if (has_format && format != DUMP_GUEST_MEMORY_FORMAT_ELF &&
        (paging || has_begin || has_length)) {
        error_setg(errp, "kdump-compressed format doesn't support paging or filter");
        return;
    }
    if (has_dump_level && (dump_level < 0 || dump_level > DUMP_LEVEL_MAX)) {
        error_setg(errp, "Parameter '%s' expects %s", "dump-level",
                   "an integer in the range 0 to 31");
        return;
    }
    if (has_dump_level && !row->info.kdump_flag) {
        error_setg(errp, "dump-level is only supported by the kdump formats");
        return;
    }
    if (has_begin && !has_length) {
        error_setg(errp, "Parameter '%s' is missing", "length");
        return;
    }
    if (!has_begin && has_length) {
        error_setg(errp, "Parameter '%s' is missing", "begin");
        return;
    }
    if (!row->info.available) {
        format_unavailable(row, errp);
        return;
    }

    if (g_str_has_prefix(protocol, "fd:")) {
        fd = dump_host_monitor_fd(protocol + 3, errp);
        if (fd < 0) {
            return;
        }
    } else if (!g_str_has_prefix(protocol, "file:")) {
        error_setg(errp, "Invalid parameter '%s'", "protocol");
        return;
    }
    /*
     * fd: was consumed above, as QEMU consumes it even when dump_init fails.
     * These are dump_init failures in QEMU: its DumpState was reset, so
     * query-dump says "failed" with zero counters.
     */
    probe.has_filter = has_begin;
    probe.begin = begin;
    probe.length = length;
    if (!dump_check_filter(&probe, errp)) {
        if (fd >= 0) {
            close(fd);
        }
        dump_job_reset(job);
        atomic_store(&dump_status, DUMP_STATUS_FAILED);
        return;
    }
    if (fd < 0) {
        p = protocol + 5;
        fd = dump_open_file(job, p, &created, errp);
        if (fd < 0) {
            return;
        }
    }
    if (row->info.kdump_raw && lseek(fd, 0, SEEK_CUR) < 0) {
        close(fd);
        dump_release_fdset_dup(job);
        if (created) {
            unlink(created);
            g_free(created);
        }
        error_setg(errp, "kdump-raw formats require a seekable file");
        return;
    }
    if (!dump_host_dump_begin(errp)) {
        close(fd);
        dump_release_fdset_dup(job);
        if (created) {
            unlink(created);
            g_free(created);
        }
        return;
    }

    memset(s, 0, sizeof(*s));
    s->fmt = &row->info;
    s->has_filter = has_begin;
    s->begin = begin;
    s->length = length;
    s->has_dump_level = has_dump_level;
    s->dump_level = has_dump_level ? (int)dump_level : 0;
    dump_job_reset(job);
    atomic_store(&dump_status, DUMP_STATUS_ACTIVE);
    job->created_path = created;
    job->resume = dump_host_vm_running();
    if (job->resume) {
        dump_host_vm_stop();
    }

    if (s->fmt->kdump_flag && !s->fmt->kdump_raw) {
        DumpOutput *stream = dump_output_new_fd(fd, false);

        job->out = dump_output_new_flattened(stream, &err);
        if (!job->out) {
            dump_output_free(stream);
        }
    } else {
        job->out = dump_output_new_fd(fd, s->fmt->kdump_raw);
    }
    if (job->out) {
        dump_output_set_cancel(job->out, &job->cancel);
    }
    if (!job->out || !dump_init(job, s, paging, &err)) {
        /* Init failures: status failed, no event (reference 2.4). */
        dump_finish(job, err, errp);
        return;
    }

    job->started = true;
    if (has_detach && detach) {
        atomic_store(&job->worker_running, true);
        atomic_store(&job->worker_tid_set, false);
        job->thread = g_thread_new("dump_thread", dump_worker, job);
        return;
    }
    dump_run(job, &err);
    dump_finish(job, err, errp);
}

DumpQueryResult *qmp_query_dump(Error **errp)
{
    DumpQueryResult *r = g_new0(DumpQueryResult, 1);

    r->status = atomic_load(&dump_status);
    r->completed = atomic_load(&dump_job.written_size);
    r->total = atomic_load(&dump_job.total_size);
    return r;
}

DumpGuestMemoryCapability *qmp_query_dump_guest_memory_capability(Error **errp)
{
    /* Reference 2.8's order; zstd (ours) last. */
    static const DumpGuestMemoryFormat order[] = {
        DUMP_GUEST_MEMORY_FORMAT_ELF,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_ZLIB,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_ZLIB,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_LZO,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_LZO,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_SNAPPY,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_SNAPPY,
        DUMP_GUEST_MEMORY_FORMAT_WIN_DMP,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_ZSTD,
        DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_ZSTD,
    };
    DumpGuestMemoryCapability *cap = g_new0(DumpGuestMemoryCapability, 1);
    DumpGuestMemoryFormatList **tail = &cap->formats;

    for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
        DumpGuestMemoryFormatList *e;

        if (!format_rows[order[i]].info.available) {
            continue;
        }
        e = g_new0(DumpGuestMemoryFormatList, 1);
        e->value = order[i];
        *tail = e;
        tail = &e->next;
    }
    return cap;
}
