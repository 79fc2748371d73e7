/* HMP (human monitor): the command table, its argument language and the handlers. */
#ifndef MONITOR_HMP_H
#define MONITOR_HMP_H

#include <json-glib/json-glib.h>
#include <stdbool.h>

#include "monitor/monitor.h"

/*
 * A handler gets its arguments parsed from the line into args: flags as
 * booleans (always present), strings as strings, integers as ints; an
 * optional argument that was not given is absent from args.
 */
typedef void HMPHandler(Monitor *mon, JsonObject *args);

/*
 * One row of a command table, as QEMU's hmp-commands.hx has them.
 *
 * name:      "stop|s" — the command and its aliases, '|'-separated.
 * args_type: comma-separated "name:type" in the order they are parsed:
 *              -x   a flag written "-x" (flags must come in declared order,
 *                   each as its own token; another declared flag later in
 *                   the list is allowed, anything else is "unsupported option")
 *              -xi  an option "-x N" with one integer word (decimal, 0x hex),
 *                   not an expression (a file name may follow); the member
 *                   is absent when the option is not given
 *              F    a file name     (missing: "<cmd>: filename expected")
 *              s    a string        (missing: "<cmd>: string expected")
 *              S    the rest of the line, as one string (help's "info status")
 *              i, l an integer expression: decimal, 0x hex, 0 octal,
 *                   + - * / % & | ^ ~ and parentheses
 *            a trailing '?' makes an argument optional.
 * params:    the usage shown by help ("[-p] filename [begin length]").
 * help:      one line (or more, "\n\t\t\t"-indented) of help.
 * sub_table: for "info": the table of subcommands (handler is NULL then).
 */
typedef struct HMPCommand {
    const char *name;
    const char *args_type;
    const char *params;
    const char *help;
    HMPHandler *handler;
    const struct HMPCommand *sub_table;
} HMPCommand;

/*
 * The tables live in monitor/hmp-table.c, each sorted by name (help lists
 * them in table order) and ended by an all-NULL row. To add a command:
 * declare its handler below (or in your own header), then add one row to
 * hmp_cmds[] or, for "info <x>", to hmp_info_cmds[] in monitor/hmp-table.c,
 * and add the handler's .c file to your folder's meson.build. Nothing else
 * needs to change: parsing, errors and help come from the row.
 */
extern const HMPCommand hmp_cmds[];
extern const HMPCommand hmp_info_cmds[];

/* Prints "Error: <msg>" for a failed QMP call and frees err; no-op for NULL. */
void hmp_handle_error(Monitor *mon, Error *err);

/* Handlers of the monitor (monitor/hmp-cmds.c). */
void hmp_help(Monitor *mon, JsonObject *args);
void hmp_info_help(Monitor *mon, JsonObject *args);
void hmp_info_version(Monitor *mon, JsonObject *args);
void hmp_info_status(Monitor *mon, JsonObject *args);
void hmp_stop(Monitor *mon, JsonObject *args);
void hmp_cont(Monitor *mon, JsonObject *args);
void hmp_quit(Monitor *mon, JsonObject *args);
void hmp_getfd(Monitor *mon, JsonObject *args);
void hmp_closefd(Monitor *mon, JsonObject *args);

/*
 * HMP front ends of the dump (monitor/hmp-dump.c). Their rows are added to
 * the tables by the dump engineer together with the implementation:
 *   {"dump-guest-memory",
 *    "paging:-p,detach:-d,windmp:-w,zlib:-z,lzo:-l,snappy:-s,raw:-R,"
 *    "filename:F,begin:l?,length:l?",
 *    "[-p] [-d] [-z|-l|-s|-w] [-R] filename [begin length]", "...",
 *    hmp_dump_guest_memory}
 *   {"dump", "", "", "Display the latest dump status", hmp_info_dump}  (info table)
 */
void hmp_dump_guest_memory(Monitor *mon, JsonObject *args);
void hmp_info_dump(Monitor *mon, JsonObject *args);

/* Convenience for handlers: an argument's value, or def when it is absent. */
bool hmp_arg_bool(JsonObject *args, const char *name);
const char *hmp_arg_str(JsonObject *args, const char *name);
bool hmp_arg_has(JsonObject *args, const char *name);
int64_t hmp_arg_int(JsonObject *args, const char *name, int64_t def);

#endif
