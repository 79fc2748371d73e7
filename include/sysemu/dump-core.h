/* The dump module: plan, job, writer interface, output sinks, format table. */
#ifndef SYSEMU_DUMP_CORE_H
#define SYSEMU_DUMP_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"
#include "qapi-types.h"            /* DumpGuestMemoryFormat, DumpStatus */
#include "sysemu/dump-x86.h"
#include "sysemu/dump-memory.h"
#include "sysemu/dump-host.h"
#include "sysemu/dump-filter.h"

/* ---------------------------------------------------------------------- */
/* Output sinks (dump/dump-output.c)                                       */
/* ---------------------------------------------------------------------- */

/*
 * Where a dump's bytes go. A sink is either seekable (a regular file: every
 * write is a pwrite at an absolute offset) or a stream (pipe, socket, or a
 * file given by fd that the caller wants written sequentially). Writers
 * that need positioned writes on a stream (flattened kdump) wrap the stream
 * in a flattened sink, which turns each positioned write into a
 * makedumpfile flat record. All writes retry EINTR and short writes; a
 * failure returns false with errno preserved in the Error text the caller
 * composes ("dump: failed to save memory: No space left on device").
 */
typedef struct DumpOutput DumpOutput;

/* Takes ownership of fd. seekable=false forces sequential writes. */
DumpOutput *dump_output_new_fd(int fd, bool seekable);
/*
 * Wraps a stream: the 4096-byte flat header is written by dump_output_start()
 * (or before the first record), the end marker at finish. Does not fail.
 */
DumpOutput *dump_output_new_flattened(DumpOutput *stream, Error **errp);
/*
 * Writes what precedes the dump's own bytes (a flattened sink's flat
 * header) once; true at once for other sinks. Sets errno on failure.
 */
bool dump_output_start(DumpOutput *out);
bool dump_output_is_seekable(const DumpOutput *out);

/*
 * Lets a write blocked on a full pipe or socket give up: once *cancel is
 * set, a write interrupted by a signal (dump_shutdown sends one to the
 * worker) fails with ECANCELED instead of retrying. Applies to a flattened
 * sink's stream too.
 */
void dump_output_set_cancel(DumpOutput *out, atomic_bool *cancel);

/* Appends at the current sequential position. Sets errno on failure. */
bool dump_output_write(DumpOutput *out, const void *buf, size_t len);
/*
 * Writes at an absolute offset of the logical file: pwrite for a seekable
 * sink, one flat record for a flattened sink. Not allowed on a plain stream.
 */
bool dump_output_pwrite(DumpOutput *out, const void *buf, size_t len, uint64_t offset);
/* Ends the output (flattened: end marker); then closes the fd. */
bool dump_output_finish(DumpOutput *out);
/* Closes without finishing (after a failure). NULL is accepted. */
void dump_output_free(DumpOutput *out);

/* ---------------------------------------------------------------------- */
/* The dump plan and the dump job                                           */
/* ---------------------------------------------------------------------- */

typedef struct DumpPlan DumpPlan;
typedef struct DumpJob DumpJob;

/*
 * One table row per format (dump/dump.c): name <-> enum <-> availability <->
 * writer <-> kdump header flag. The writer never learns how it was chosen.
 * A writer reads job->plan, writes job->out, reports progress and checks
 * cancel through the job, and keeps its own state in job->writer_state.
 */
typedef struct DumpWriter {
    /* Computes sizes and layout; runs in dump_init with the guest paused. */
    bool (*prepare)(DumpJob *job, Error **errp);
    /* Writes the whole dump to job->out. */
    bool (*write)(DumpJob *job, Error **errp);
    /* Frees what prepare allocated; called on success and failure. */
    void (*cleanup)(DumpJob *job);
} DumpWriter;

typedef struct DumpFormatInfo {
    DumpGuestMemoryFormat format;
    const DumpWriter *writer;
    uint32_t kdump_flag;          /* DUMP_DH_COMPRESSED_*; 0 for elf / win-dmp */
    bool kdump_raw;               /* positioned writes to a seekable file */
    bool available;               /* compiled in */
} DumpFormatInfo;

const DumpFormatInfo *dump_format_info(DumpGuestMemoryFormat format);

/*
 * What to dump: built once by dump_init with the guest paused, from what
 * the host reported (sysemu/dump-host.h), then read-only. Writers and the
 * worker thread only read it, so it needs no lock.
 */
struct DumpPlan {
    /* What was asked. */
    const DumpFormatInfo *fmt;
    bool paging;
    bool has_filter;
    int64_t begin;
    int64_t length;
    /* dump-level 0-31; absent: nothing excluded, header level 1 (QEMU). */
    bool has_dump_level;
    int dump_level;
    /*
     * The guest's memory layout from its VMCOREINFO when the level
     * classifies struct pages (sysemu/dump-filter.h), else NULL.
     */
    DumpLinuxMm *linux_mm;

    DumpGuestBlockList guest_phys_blocks;
    DumpMappingList *list;        /* filtered when has_filter (ELF only) */
    DumpArchInfo dump_info;
    int nr_cpus;
    DumpX86CPUState *cpus;        /* nr_cpus vCPUs in CPU-list order */

    /*
     * The whole note area, exactly as the ELF PT_NOTE and the kdump note
     * chunk carry it: CORE x nr_cpus, QEMU x nr_cpus, then the guest note.
     */
    uint8_t *notes;
    size_t note_size;
    /* The guest note inside notes (NULL/0 when none was accepted). */
    const uint8_t *guest_note;
    size_t guest_note_size;

    /* Bytes of guest memory the dump covers (inside the filter). */
    uint64_t total_size;
};

/*
 * Guest-physical memory of the plan's blocks: true and len bytes in buf
 * when [gpa, gpa+len) is all RAM (it may span blocks), else false and
 * nothing copied.
 */
bool dump_plan_read_phys(const DumpPlan *plan, uint64_t gpa, void *buf, size_t len);
/*
 * Guest-virtual memory through the page tables env describes (a vCPU of
 * the plan, or a copy with another cr3), page by page: false when a page
 * is not mapped or not RAM.
 */
bool dump_plan_read_virt(const DumpPlan *plan, const DumpX86CPUState *env,
                         uint64_t vaddr, void *buf, size_t len);

/*
 * One run of a dump: the plan it writes, the sink, the progress query-dump
 * reads and the cancel flag, shared by the caller and the worker thread.
 * The fields after "dump.c's" belong to dump/dump.c (the thread, what the
 * end of the dump must undo); writers do not touch them.
 */
struct DumpJob {
    const DumpPlan *plan;
    DumpOutput *out;

    /* Progress, read by query-dump from any thread. */
    _Atomic int64_t total_size;
    _Atomic int64_t written_size;

    /* Set by quit: writers check it between batches and fail with "dump: cancelled". */
    atomic_bool cancel;

    void *writer_state;           /* private to the writer */

    /* dump.c's */
    GThread *thread;              /* detach=true: the worker */
    Error *thread_err;            /* the worker's result, taken on the main thread */
    atomic_bool worker_running;
    atomic_bool worker_tid_set;
    pthread_t worker_tid;         /* to interrupt a write blocked on a pipe */
    bool resume;                  /* the guest ran before the dump */
    char *created_path;           /* unlinked if the dump fails */
    int fdset_dup;                /* from /dev/fdset/N, or -1 */
    bool started;                 /* reached the writing phase: emit the event */
    bool prepared;                /* the writer's cleanup is owed */
};

/* Adds to written_size (query-dump's "completed"). */
static inline void dump_progress_add(DumpJob *job, int64_t bytes)
{
    atomic_fetch_add_explicit(&job->written_size, bytes, memory_order_relaxed);
}

/* True (with "dump: cancelled" in errp) when the dump should stop now. */
bool dump_check_cancel(DumpJob *job, Error **errp);

/*
 * Threads for page compression: the number of online CPUs unless set by
 * -dump-threads N or GUESTDUMP_DUMP_THREADS.
 */
int dump_thread_count(void);
void dump_set_thread_count(int n);

/* The writers (one per file). */
extern const DumpWriter dump_elf_writer;
extern const DumpWriter dump_kdump_writer;
extern const DumpWriter dump_win_dmp_writer;

/*
 * True while a dump is active: the host's stop and cont refuse then with
 * "There is a dump in process, please wait." (QEMU's name for it is
 * qemu_system_dump_in_progress).
 */
bool dump_in_progress(void);

/* Ends a running dump at exit: cancels it and joins the worker. */
void dump_shutdown(void);
/*
 * The process is about to exit: a dump being prepared or written stops with
 * "dump: cancelled" (a page walk within one page table). Async-signal-safe,
 * for the host's exit-signal handlers, which run while the main loop may be
 * busy in the walk.
 */
void dump_cancel_async(void);

#endif
