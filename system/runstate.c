/* Run state of the virtual machine, its QMP commands, and shutdown requests. */
#include "sysemu/runstate.h"

#include "qapi-commands.h"
#include "qapi-events.h"

typedef struct ChangeHandler {
    VMChangeStateHandler *cb;
    void *opaque;
} ChangeHandler;

/* Main-thread state: the dump worker never changes the run state itself. */
static RunState current_state = RUN_STATE_PRELAUNCH;
static GArray *handlers;
static GMainLoop *main_loop;
static bool shutdown_requested;

RunState runstate_get(void)
{
    return current_state;
}

bool runstate_is_running(void)
{
    return current_state == RUN_STATE_RUNNING;
}

void runstate_add_change_handler(VMChangeStateHandler *cb, void *opaque)
{
    if (!handlers) {
        handlers = g_array_new(FALSE, FALSE, sizeof(ChangeHandler));
    }
    ChangeHandler h = { cb, opaque };
    g_array_append_val(handlers, h);
}

static void notify(bool running, RunState state)
{
    for (guint i = 0; handlers && i < handlers->len; i++) {
        ChangeHandler *h = &g_array_index(handlers, ChangeHandler, i);
        h->cb(h->opaque, running, state);
    }
}

void vm_stop(RunState state)
{
    /* As QEMU's do_vm_stop: a guest that is not running keeps its state. */
    if (!runstate_is_running()) {
        return;
    }
    current_state = state;
    notify(false, state);
    qapi_event_send_stop();
}

void vm_start(void)
{
    if (runstate_is_running()) {
        return;
    }
    current_state = RUN_STATE_RUNNING;
    notify(true, RUN_STATE_RUNNING);
    qapi_event_send_resume();
}

void qmp_stop(Error **errp)
{
    if (dump_in_progress()) {
        error_setg(errp, "There is a dump in process, please wait.");
        return;
    }
    vm_stop(RUN_STATE_PAUSED);
}

void qmp_cont(Error **errp)
{
    if (dump_in_progress()) {
        error_setg(errp, "There is a dump in process, please wait.");
        return;
    }
    vm_start();
}

StatusInfo *qmp_query_status(Error **errp)
{
    StatusInfo *info = g_new0(StatusInfo, 1);

    info->running = runstate_is_running();
    info->singlestep = false;
    info->status = current_state;
    return info;
}

void runstate_set_main_loop(GMainLoop *loop)
{
    main_loop = loop;
}

bool runstate_shutdown_requested(void)
{
    return shutdown_requested;
}

void qemu_system_shutdown_request(ShutdownCause cause)
{
    if (shutdown_requested) {
        return;
    }
    shutdown_requested = true;
    qapi_event_send_shutdown(false, cause);
    if (main_loop) {
        g_main_loop_quit(main_loop);
    }
}

void qmp_quit(Error **errp)
{
    qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
}
