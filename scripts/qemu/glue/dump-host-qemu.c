/* QEMU 7.2's side of the dump module's host interface (sysemu/dump-host.h). */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "hw/core/cpu.h"
#include "hw/i386/apic.h"
#include "hw/misc/vmcoreinfo.h"
#include "migration/blocker.h"
#include "monitor/monitor.h"
#include "sysemu/cpus.h"
#include "sysemu/runstate.h"
#include "cpu.h"
#include "sysemu/dump-host.h"

/*
 * From the module's sysemu/dump-core.h, which the glue cannot include: it
 * needs the module's QAPI shim headers, which only the module's own files
 * are compiled with.
 */
bool dump_in_progress(void);

/*
 * Guest RAM. A memory listener registered on address_space_memory is
 * replayed every section at once; RAM sections are kept and merged as
 * QEMU 7.2's own dump merges them: only when the new section starts where
 * the previous block ends in guest-physical space, continues it in host
 * memory, and belongs to the same MemoryRegion. Device RAM (ram_device:
 * e.g. a passed-through BAR, which may fault when read) and persistent
 * memory are not guest RAM for a dump.
 */
typedef struct BlockCollector {
    MemoryListener listener;
    GArray *blocks;               /* DumpGuestBlock */
    MemoryRegion *last_mr;        /* region of the last block, for merging */
} BlockCollector;

/* Regions whose host pointers the module holds until dump_host_dump_end(). */
static GPtrArray *held_regions;

static void collect_region_add(MemoryListener *listener,
                               MemoryRegionSection *section)
{
    BlockCollector *c = container_of(listener, BlockCollector, listener);
    MemoryRegion *mr = section->mr;
    uint64_t start, size;
    uint8_t *host;
    DumpGuestBlock *last;

    if (!memory_region_is_ram(mr) || memory_region_is_ram_device(mr) ||
        memory_region_is_nonvolatile(mr)) {
        return;
    }
    start = section->offset_within_address_space;
    size = int128_get64(section->size);
    if (size == 0) {
        return;
    }
    host = (uint8_t *)memory_region_get_ram_ptr(mr) + section->offset_within_region;

    last = c->blocks->len ?
        &g_array_index(c->blocks, DumpGuestBlock, c->blocks->len - 1) : NULL;
    /* The flat view is replayed in ascending address order. */
    assert(!last || last->target_end <= start);
    if (last && last->target_end == start && c->last_mr == mr &&
        last->host_addr + (last->target_end - last->target_start) == host) {
        last->target_end += size;
        return;
    }
    DumpGuestBlock b = {
        .target_start = start,
        .target_end = start + size,
        .host_addr = host,
    };
    g_array_append_val(c->blocks, b);
    c->last_mr = mr;
    /* Keeps the RAM mapped even if the guest unplugs it during the dump. */
    memory_region_ref(mr);
    if (!held_regions) {
        held_regions = g_ptr_array_new();
    }
    g_ptr_array_add(held_regions, mr);
}

DumpGuestBlock *dump_host_guest_blocks(size_t *num)
{
    BlockCollector c = {
        .listener = {
            .name = "guestdump",
            .region_add = collect_region_add,
        },
        .blocks = g_array_new(FALSE, FALSE, sizeof(DumpGuestBlock)),
    };

    memory_listener_register(&c.listener, &address_space_memory);
    memory_listener_unregister(&c.listener);
    *num = c.blocks->len;
    return (DumpGuestBlock *)g_array_free(c.blocks, c.blocks->len == 0);
}

static void copy_segment(DumpX86Segment *d, const SegmentCache *s)
{
    d->selector = s->selector;
    d->base = s->base;
    d->limit = s->limit;
    d->flags = s->flags;
}

DumpX86CPUState *dump_host_cpu_states(int *num)
{
    GArray *arr = g_array_new(FALSE, TRUE, sizeof(DumpX86CPUState));
    CPUState *cs;

    /* With KVM the registers live in the kernel until synchronized. */
    cpu_synchronize_all_states();
    CPU_FOREACH(cs) {
        X86CPU *cpu = X86_CPU(cs);
        CPUX86State *env = &cpu->env;
        DumpX86CPUState st = { 0 };
        int i;

        for (i = 0; i < DUMP_CPU_NB_REGS && i < CPU_NB_REGS; i++) {
            st.regs[i] = env->regs[i];
        }
        st.eip = env->eip;
        st.eflags = env->eflags;
        for (i = 0; i < DUMP_R_NB_SEGS; i++) {
            copy_segment(&st.segs[i], &env->segs[i]);
        }
        copy_segment(&st.ldt, &env->ldt);
        copy_segment(&st.tr, &env->tr);
        copy_segment(&st.gdt, &env->gdt);
        copy_segment(&st.idt, &env->idt);
        for (i = 0; i < 5; i++) {
            st.cr[i] = env->cr[i];
        }
        /* cr8 is the APIC's task priority; no APIC (e.g. -cpu 486): 0. */
        st.cr8 = cpu->apic_state ? cpu_get_apic_tpr(cpu->apic_state) : 0;
        st.efer = env->efer;
#ifdef TARGET_X86_64
        st.kernelgsbase = env->kernelgsbase;
#endif
        st.a20_mask = env->a20_mask;
        st.mxcsr = env->mxcsr;
        for (i = 0; i < 8; i++) {
            st.dr[i] = env->dr[i];
        }
        st.cpu_index = cs->cpu_index;
        g_array_append_val(arr, st);
    }
    *num = arr->len;
    return (DumpX86CPUState *)g_array_free(arr, FALSE);
}

bool dump_host_vm_running(void)
{
    return runstate_is_running();
}

bool dump_host_vm_incoming(void)
{
    return runstate_check(RUN_STATE_INMIGRATE);
}

void dump_host_vm_stop(void)
{
    vm_stop(RUN_STATE_SAVE_VM);
}

void dump_host_vm_resume(void)
{
    vm_start();
}

/*
 * While a dump owns the guest's state, migration must wait: 7.2 adds this
 * blocker even under -only-migratable (hence the _internal variant), with
 * this text.
 */
static Error *dump_blocker;

bool dump_host_dump_begin(Error **errp)
{
    if (!dump_blocker) {
        error_setg(&dump_blocker,
                   "Live migration disabled: dump-guest-memory in progress");
    }
    return migrate_add_blocker_internal(dump_blocker, errp) == 0;
}

void dump_host_dump_end(void)
{
    migrate_del_blocker(dump_blocker);
    if (held_regions) {
        for (guint i = 0; i < held_regions->len; i++) {
            memory_region_unref(g_ptr_array_index(held_regions, i));
        }
        g_ptr_array_free(held_regions, TRUE);
        held_regions = NULL;
    }
}

bool dump_host_vmcoreinfo(DumpVmcoreinfo *info)
{
    VMCoreInfoState *vmci = vmcoreinfo_find();

    memset(info, 0, sizeof(*info));
    if (!vmci) {
        return false;
    }
    /* The guest wrote these fields through fw_cfg: little-endian. */
    info->has_vmcoreinfo = vmci->has_vmcoreinfo;
    info->guest_format = le16_to_cpu(vmci->vmcoreinfo.guest_format);
    info->size = le32_to_cpu(vmci->vmcoreinfo.size);
    info->paddr = le64_to_cpu(vmci->vmcoreinfo.paddr);
    return true;
}

int dump_host_monitor_fd(const char *fdname, Error **errp)
{
    return monitor_get_fd(monitor_cur(), fdname, errp);
}

int dump_host_open(const char *path, int flags, mode_t mode, Error **errp)
{
    int fd = qemu_open_old(path, flags, mode);

    if (fd < 0) {
        error_setg_file_open(errp, errno, path);
    }
    return fd;
}

void dump_host_fd_closed(int fd)
{
    monitor_fdset_dup_fd_remove(fd);
}

void dump_host_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    warn_vreport(fmt, ap);
    va_end(ap);
}

void dump_host_run_on_main(void (*fn)(void *opaque), void *opaque)
{
    /* A one-shot bottom half runs in the main loop, with the BQL held. */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), fn, opaque);
}

/*
 * QEMU's stop and cont refuse during a dump ("There is a dump in process,
 * please wait."); they ask under this name, which QEMU's dump.c defined.
 */
bool qemu_system_dump_in_progress(void)
{
    return dump_in_progress();
}
