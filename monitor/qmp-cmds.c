/* QMP commands about the monitor itself: query-version, query-commands. */
#include "monitor-internal.h"

#include "config-host.h"
#include "qapi-commands.h"
#include "qapi/qmp-dispatch.h"

VersionInfo *qmp_query_version(Error **errp)
{
    VersionInfo *info = g_new0(VersionInfo, 1);

    /* The interface is QEMU 7.2's; package says who actually answers. */
    info->qemu = g_new0(VersionTriple, 1);
    info->qemu->major = 7;
    info->qemu->minor = 2;
    info->qemu->micro = 0;
    info->package = g_strdup("guestdump " GUESTDUMP_VERSION);
    return info;
}

CommandInfoList *qmp_query_commands(Error **errp)
{
    CommandInfoList *list = NULL;

    /* QEMU prepends while walking its table; the order clients see follows. */
    for (size_t i = 0; i < qmp_commands_count; i++) {
        CommandInfo *ci = g_new0(CommandInfo, 1);
        ci->name = g_strdup(qmp_commands[i].name);
        CommandInfoList *e = g_new0(CommandInfoList, 1);
        e->value = ci;
        e->next = list;
        list = e;
    }
    return list;
}
