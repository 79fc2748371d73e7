/* guestdump's side of the dump module's host interface (sysemu/dump-host.h). */
#include <glib.h>
#include <string.h>

#include "hw/vmcoreinfo.h"
#include "monitor/monitor.h"
#include "sysemu/cpus.h"
#include "sysemu/dump-host.h"
#include "sysemu/physmem.h"
#include "sysemu/runstate.h"

DumpGuestBlock *dump_host_guest_blocks(size_t *num)
{
    size_t n = physmem_block_count();
    GArray *arr = g_array_sized_new(FALSE, FALSE, sizeof(DumpGuestBlock), n);
    unsigned prev_region = 0;

    for (size_t i = 0; i < n; i++) {
        const RAMBlock *rb = physmem_block(i);
        DumpGuestBlock *last = arr->len ?
            &g_array_index(arr, DumpGuestBlock, arr->len - 1) : NULL;

        if (!rb || rb->size == 0) {
            continue;
        }
        /* QEMU merges only when contiguous in both spaces and one region. */
        if (last && last->target_end == rb->gpa &&
            last->host_addr + (last->target_end - last->target_start) == rb->host &&
            prev_region == rb->region) {
            last->target_end += rb->size;
        } else {
            DumpGuestBlock b = {
                .target_start = rb->gpa,
                .target_end = rb->gpa + rb->size,
                .host_addr = rb->host,
            };
            g_array_append_val(arr, b);
        }
        prev_region = rb->region;
    }
    *num = arr->len;
    return (DumpGuestBlock *)g_array_free(arr, arr->len == 0);
}

DumpX86CPUState *dump_host_cpu_states(int *num)
{
    int n = machine_cpu_count();
    DumpX86CPUState *st = g_new0(DumpX86CPUState, n > 0 ? n : 1);

    for (int i = 0; i < n; i++) {
        const X86CPU *cpu = machine_cpu(i);

        /* The machine keeps its vCPU state in the module's own layout. */
        st[i] = cpu->env;
        st[i].cpu_index = cpu->cpu_index;
    }
    *num = n;
    return st;
}

bool dump_host_vm_running(void)
{
    return runstate_is_running();
}

bool dump_host_vm_incoming(void)
{
    return runstate_get() == RUN_STATE_INMIGRATE;
}

void dump_host_vm_stop(void)
{
    vm_stop(RUN_STATE_SAVE_VM);
}

void dump_host_vm_resume(void)
{
    vm_start();
}

/* guestdump has no migration to block. */
bool dump_host_dump_begin(Error **errp)
{
    return true;
}

void dump_host_dump_end(void)
{
}

bool dump_host_vmcoreinfo(DumpVmcoreinfo *info)
{
    const VMCoreInfoState *vmci = vmcoreinfo_find();

    memset(info, 0, sizeof(*info));
    if (!vmci) {
        return false;
    }
    info->has_vmcoreinfo = vmci->has_vmcoreinfo;
    info->guest_format = vmci->guest_format;
    info->size = vmci->size;
    info->paddr = vmci->paddr;
    return true;
}

int dump_host_monitor_fd(const char *fdname, Error **errp)
{
    return monitor_get_fd(monitor_cur(), fdname, errp);
}

int dump_host_open(const char *path, int flags, mode_t mode, Error **errp)
{
    return qemu_open_old(path, flags, mode, errp);
}

void dump_host_fd_closed(int fd)
{
    monitor_fdset_dup_fd_remove(fd);
}

void dump_host_warn(const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    warn_report("%s", msg);
}

typedef struct MainCall {
    void (*fn)(void *opaque);
    void *opaque;
} MainCall;

static gboolean main_call_run(gpointer data)
{
    MainCall *c = data;

    c->fn(c->opaque);
    g_free(c);
    return G_SOURCE_REMOVE;
}

void dump_host_run_on_main(void (*fn)(void *opaque), void *opaque)
{
    MainCall *c = g_new(MainCall, 1);

    c->fn = fn;
    c->opaque = opaque;
    g_idle_add(main_call_run, c);
}
