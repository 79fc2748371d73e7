/* Link-time wrappers that keep fuzzed monitor commands from writing files or ending the process. */
#include <string.h>

#include <glib.h>

#include "fuzz-monitor.h"
#include "qapi-commands.h"
#include "sysemu/dump-core.h"
#include "sysemu/machine.h"

void __real_qmp_dump_guest_memory(bool paging, const char *protocol, bool has_detach,
                                  bool detach, bool has_begin, int64_t begin,
                                  bool has_length, int64_t length, bool has_format,
                                  DumpGuestMemoryFormat format, bool has_dump_level,
                                  int64_t dump_level, Error **errp);
void __wrap_qmp_dump_guest_memory(bool paging, const char *protocol, bool has_detach,
                                  bool detach, bool has_begin, int64_t begin,
                                  bool has_length, int64_t length, bool has_format,
                                  DumpGuestMemoryFormat format, bool has_dump_level,
                                  int64_t dump_level, Error **errp);
void __wrap_qmp_quit(Error **errp);

/* Dumps run for real, but into /dev/null; fd: stays (no fd is ever passed here). */
void __wrap_qmp_dump_guest_memory(bool paging, const char *protocol, bool has_detach,
                                  bool detach, bool has_begin, int64_t begin,
                                  bool has_length, int64_t length, bool has_format,
                                  DumpGuestMemoryFormat format, bool has_dump_level,
                                  int64_t dump_level, Error **errp)
{
    if (g_str_has_prefix(protocol, "file:")) {
        protocol = "file:/dev/null";
    }
    __real_qmp_dump_guest_memory(paging, protocol, has_detach, detach, has_begin, begin,
                                 has_length, length, has_format, format,
                                 has_dump_level, dump_level, errp);
}

void __wrap_qmp_quit(Error **errp)
{
}

void fuzz_monitor_machine_init(void)
{
    MachineOptions opts = { .machine_type = (char *)"pc", .ram_size = 4u << 20,
                            .smp = 2 };
    g_autoptr(GPtrArray) devices = g_ptr_array_new();

    g_ptr_array_add(devices, (char *)"vmcoreinfo");
    opts.devices = devices;
    g_assert(machine_init(&opts, NULL));
    dump_set_thread_count(1);
}

void fuzz_monitor_settle(void)
{
    DumpQueryResult *r;

    /* A detached dump finishes on the main loop; wait for it, as a client would. */
    for (;;) {
        r = qmp_query_dump(NULL);
        if (r->status != DUMP_STATUS_ACTIVE) {
            break;
        }
        qapi_free_DumpQueryResult(r);
        g_main_context_iteration(NULL, TRUE);
    }
    qapi_free_DumpQueryResult(r);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}
