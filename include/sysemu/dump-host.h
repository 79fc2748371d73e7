/* The dump module's one interface to its host: guestdump's system/ or QEMU's glue. */
#ifndef SYSEMU_DUMP_HOST_H
#define SYSEMU_DUMP_HOST_H

/*
 * The dump module (dump/, target/i386/arch_dump.c and arch_memory_mapping.c,
 * include/sysemu/dump*.h, qapi/dump.json)
 * asks its host for everything through the functions below and nothing
 * else, so the same sources build inside guestdump (system/dump-host.c)
 * and inside QEMU 7.2 (a thin glue over RAMBlocks, CPU_FOREACH, vm_stop,
 * vmcoreinfo_find, monitor fds, the main loop and a migration blocker).
 *
 * Every name here is the module's own (Dump..., DUMP_..., dump_host_...):
 * the QEMU glue includes this header next to QEMU's target/i386/cpu.h,
 * sysemu/runstate.h and friends, so nothing may collide with them.
 *
 * Besides this header the module uses only the C library, POSIX, GLib and
 * the generated QAPI code ("qapi-types.h", "qapi-commands.h",
 * "qapi-events.h", "qapi/error.h"), which both hosts provide; it calls
 * qapi_event_send_dump_completed() itself.
 *
 * The worker thread of a detached dump is a GLib thread (g_thread_new),
 * which both hosts have, so it is not part of this interface.
 *
 * Threads: every function here is called on the main thread (the thread
 * that runs QMP commands, with QEMU's BQL held) except where it says so.
 */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qapi/error.h"

/* ---------------------------------------------------------------------- */
/* Guest RAM                                                                */
/* ---------------------------------------------------------------------- */

/*
 * A guest-physically contiguous run of RAM with one host mapping. The
 * host reports blocks sorted by target_start, disjoint, already merged as
 * QEMU 7.2's guest_phys_blocks merge them (adjacent in guest-physical and
 * host address space and from the same memory region); they may start or
 * end mid-page. RAM-backed ROM (pc.bios) is RAM here, as in QEMU.
 */
typedef struct DumpGuestBlock {
    uint64_t target_start;
    uint64_t target_end;          /* exclusive */
    uint8_t *host_addr;           /* host address of target_start */
} DumpGuestBlock;

/*
 * A snapshot of the guest's RAM blocks: a g_new array of *num blocks
 * (NULL when there are none), freed by the caller with g_free. The host
 * pointers stay valid until dump_host_dump_end(); the module reads guest
 * memory only through them (it never asks the host to read).
 */
DumpGuestBlock *dump_host_guest_blocks(size_t *num);

/* ---------------------------------------------------------------------- */
/* vCPUs                                                                    */
/* ---------------------------------------------------------------------- */

/* General registers, in x86 encoding order (QEMU's R_EAX ... R_R15). */
enum {
    DUMP_R_EAX, DUMP_R_ECX, DUMP_R_EDX, DUMP_R_EBX,
    DUMP_R_ESP, DUMP_R_EBP, DUMP_R_ESI, DUMP_R_EDI,
    DUMP_R_R8, DUMP_R_R9, DUMP_R_R10, DUMP_R_R11,
    DUMP_R_R12, DUMP_R_R13, DUMP_R_R14, DUMP_R_R15,
    DUMP_CPU_NB_REGS
};

/* Segment registers, in QEMU's CPUX86State.segs[] order. */
enum { DUMP_R_ES, DUMP_R_CS, DUMP_R_SS, DUMP_R_DS, DUMP_R_FS, DUMP_R_GS,
       DUMP_R_NB_SEGS };

/* A segment as QEMU caches it: flags are the descriptor's high dword bits 8-23. */
typedef struct DumpX86Segment {
    uint32_t selector;
    uint64_t base;
    uint32_t limit;               /* expanded byte limit */
    uint32_t flags;
} DumpX86Segment;

/*
 * What the notes, the page walk and win-dmp need of one x86 vCPU, copied
 * by the host with the guest paused (QEMU: after cpu_synchronize_state).
 * Field names follow QEMU's CPUX86State so a host can copy field by field.
 */
typedef struct DumpX86CPUState {
    uint64_t regs[DUMP_CPU_NB_REGS];   /* indexed by DUMP_R_EAX ... */
    uint64_t eip;
    uint64_t eflags;
    DumpX86Segment segs[DUMP_R_NB_SEGS];
    DumpX86Segment ldt;
    DumpX86Segment tr;
    DumpX86Segment gdt;           /* base and limit only */
    DumpX86Segment idt;           /* base and limit only */
    uint64_t cr[5];               /* cr0 .. cr4 (cr1 kept for the note) */
    uint64_t cr8;
    uint64_t efer;
    uint64_t kernelgsbase;
    uint32_t a20_mask;            /* ~0 when A20 is enabled */
    uint32_t mxcsr;               /* win-dmp's CONTEXT */
    uint64_t dr[8];
    int cpu_index;                /* QEMU's cpu_index; pr_pid is this + 1 */
} DumpX86CPUState;

/*
 * The vCPUs in CPU-list order (QEMU: CPU_FOREACH): a g_new array of *num
 * states, freed by the caller. Called with the guest paused.
 */
DumpX86CPUState *dump_host_cpu_states(int *num);

/* ---------------------------------------------------------------------- */
/* Run state                                                                */
/* ---------------------------------------------------------------------- */

/* True while the guest runs (QEMU: runstate_is_running()). */
bool dump_host_vm_running(void);
/* True while an incoming migration fills the guest (RUN_STATE_INMIGRATE). */
bool dump_host_vm_incoming(void);
/* Pauses the guest for the dump (QEMU: vm_stop(RUN_STATE_SAVE_VM)); STOP event. */
void dump_host_vm_stop(void);
/* Restarts the guest the dump paused (QEMU: vm_start()); RESUME event. */
void dump_host_vm_resume(void);

/* ---------------------------------------------------------------------- */
/* Dump begin / end                                                         */
/* ---------------------------------------------------------------------- */

/*
 * A dump is about to pause the guest and own its state (QEMU adds its
 * migration blocker here; its error text is the host's). When it returns
 * true, dump_host_dump_end() follows exactly once, on the main thread,
 * after the guest was resumed (or not) and the event sent.
 */
bool dump_host_dump_begin(Error **errp);
void dump_host_dump_end(void);

/* ---------------------------------------------------------------------- */
/* The guest's vmcoreinfo note (the vmcoreinfo device, fw_cfg etc/vmcoreinfo) */
/* ---------------------------------------------------------------------- */

#define DUMP_VMCOREINFO_FORMAT_NONE 0
#define DUMP_VMCOREINFO_FORMAT_ELF 1

/* What the guest wrote to the device, untrusted: the module checks it. */
typedef struct DumpVmcoreinfo {
    bool has_vmcoreinfo;          /* the guest completed a write of the file */
    uint16_t guest_format;        /* DUMP_VMCOREINFO_FORMAT_* */
    uint32_t size;
    uint64_t paddr;
} DumpVmcoreinfo;

/* False when the machine has no vmcoreinfo device (then no guest note). */
bool dump_host_vmcoreinfo(DumpVmcoreinfo *info);

/* ---------------------------------------------------------------------- */
/* File descriptors                                                         */
/* ---------------------------------------------------------------------- */

/*
 * Takes the fd the current monitor received with getfd under fdname; the
 * caller owns it. Error as QEMU 7.2: "File descriptor named '%s' has not
 * been found".
 */
int dump_host_monitor_fd(const char *fdname, Error **errp);
/*
 * open(2) that understands "/dev/fdset/N" as QEMU's qemu_open_old does
 * (a dup of the set's fd; O_TRUNC truncates it). Failure: -1 and
 * "Could not open '%s': <strerror>".
 */
int dump_host_open(const char *path, int flags, mode_t mode, Error **errp);
/*
 * An fd dump_host_open returned has been closed: an fd set may now be
 * released (QEMU: monitor_fdset_dup_fd_remove). Other fds are ignored.
 */
void dump_host_fd_closed(int fd);

/* ---------------------------------------------------------------------- */
/* Messages, main loop                                                      */
/* ---------------------------------------------------------------------- */

/*
 * "warning: <msg>" to the current human monitor, else stderr (QEMU's
 * warn_report). Any thread.
 */
void dump_host_warn(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/*
 * Runs fn(opaque) once, soon, on the main thread from the main loop
 * (QEMU: a bottom half). Any thread: a detached dump's worker ends the
 * dump this way, so resume and DUMP_COMPLETED happen on the main thread.
 */
void dump_host_run_on_main(void (*fn)(void *opaque), void *opaque);

#endif
