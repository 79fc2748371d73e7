/*
 * HMP dump-cancel for QEMU (a guestdump extension, as its QMP command):
 * QEMU's HMP commands are its own (hmp-commands.hx), so install-module.sh
 * adds the row there and this handler next to QEMU's dump-hmp-cmds.c.
 */
#include "qemu/osdep.h"
#include "monitor/hmp.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-dump.h"

void hmp_dump_cancel(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_dump_cancel(&err);
    hmp_handle_error(mon, err);
}
