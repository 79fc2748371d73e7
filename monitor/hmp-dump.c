/* guestdump's HMP dump commands (QEMU has its own): dump-guest-memory, info dump */
#include <glib.h>

#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qapi-commands.h"

void hmp_dump_guest_memory(Monitor *mon, JsonObject *args)
{
    bool paging = hmp_arg_bool(args, "paging");
    bool detach = hmp_arg_bool(args, "detach");
    bool win = hmp_arg_bool(args, "windmp");
    bool zlib = hmp_arg_bool(args, "zlib");
    bool lzo = hmp_arg_bool(args, "lzo");
    bool snappy = hmp_arg_bool(args, "snappy");
    bool raw = hmp_arg_bool(args, "raw");
    bool has_begin = hmp_arg_has(args, "begin");
    bool has_length = hmp_arg_has(args, "length");
    DumpGuestMemoryFormat format = DUMP_GUEST_MEMORY_FORMAT_ELF;
    g_autofree char *protocol = NULL;
    Error *err = NULL;

    if (zlib + lzo + snappy + win > 1) {
        error_setg(&err, "only one of '-z|-l|-s|-w' can be set");
        hmp_handle_error(mon, err);
        return;
    }
    /* -R only means something with a kdump flag; alone it is ignored (QEMU). */
    if (win) {
        format = DUMP_GUEST_MEMORY_FORMAT_WIN_DMP;
    } else if (zlib) {
        format = raw ? DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_ZLIB
                     : DUMP_GUEST_MEMORY_FORMAT_KDUMP_ZLIB;
    } else if (lzo) {
        format = raw ? DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_LZO
                     : DUMP_GUEST_MEMORY_FORMAT_KDUMP_LZO;
    } else if (snappy) {
        format = raw ? DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_SNAPPY
                     : DUMP_GUEST_MEMORY_FORMAT_KDUMP_SNAPPY;
    }
    /* HMP always writes a file (which may be /dev/fdset/N) and names the format. */
    protocol = g_strconcat("file:", hmp_arg_str(args, "filename"), NULL);
    qmp_dump_guest_memory(paging, protocol, true, detach,
                          has_begin, hmp_arg_int(args, "begin", 0),
                          has_length, hmp_arg_int(args, "length", 0),
                          true, format,
                          hmp_arg_has(args, "dump-level"),
                          hmp_arg_int(args, "dump-level", 0), &err);
    hmp_handle_error(mon, err);
}

void hmp_info_dump(Monitor *mon, JsonObject *args)
{
    g_autoptr(DumpQueryResult) r = qmp_query_dump(NULL);

    monitor_printf(mon, "Status: %s\n", DumpStatus_str(r->status));
    /* QEMU asserts total != 0 here; an active dump always has RAM to write. */
    if (r->status == DUMP_STATUS_ACTIVE && r->total) {
        double percent = 100.0 * r->completed / r->total;

        monitor_printf(mon, "Finished: %.2f %%\n", percent);
    }
}
