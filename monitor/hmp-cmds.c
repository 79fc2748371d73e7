/* HMP handlers of the monitor itself: info version/status, stop, cont, quit, fds. */
#include "monitor/hmp.h"

#include "qapi-commands.h"

void hmp_info_version(Monitor *mon, JsonObject *args)
{
    g_autoptr(VersionInfo) info = qmp_query_version(NULL);

    /* QEMU glues the package straight onto the version; so do we. */
    monitor_printf(mon, "%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT
                   "%s\n", info->qemu->major, info->qemu->minor, info->qemu->micro,
                   info->package);
}

void hmp_info_status(Monitor *mon, JsonObject *args)
{
    g_autoptr(StatusInfo) info = qmp_query_status(NULL);

    monitor_printf(mon, "VM status: %s%s", info->running ? "running" : "paused",
                   info->singlestep ? " (single step mode)" : "");
    if (!info->running && info->status != RUN_STATE_PAUSED) {
        monitor_printf(mon, " (%s)", RunState_str(info->status));
    }
    monitor_printf(mon, "\n");
}

void hmp_stop(Monitor *mon, JsonObject *args)
{
    Error *err = NULL;
    qmp_stop(&err);
    hmp_handle_error(mon, err);
}

void hmp_cont(Monitor *mon, JsonObject *args)
{
    Error *err = NULL;
    qmp_cont(&err);
    hmp_handle_error(mon, err);
}

void hmp_quit(Monitor *mon, JsonObject *args)
{
    qmp_quit(NULL);
}

void hmp_getfd(Monitor *mon, JsonObject *args)
{
    Error *err = NULL;
    qmp_getfd(hmp_arg_str(args, "fdname"), &err);
    hmp_handle_error(mon, err);
}

void hmp_closefd(Monitor *mon, JsonObject *args)
{
    Error *err = NULL;
    qmp_closefd(hmp_arg_str(args, "fdname"), &err);
    hmp_handle_error(mon, err);
}
