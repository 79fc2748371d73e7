/* Fuzz target: HMP input lines: line assembly, the argument language and every handler. */
#include <glib.h>

#include "fuzz-monitor.h"
#include "fuzz.h"
#include "monitor/monitor-internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_monitor_machine_init();
    return 0;
}

/* Input: what a user types, lines ended by '\n' (dumps go to /dev/null). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Monitor mon = {
        .qmp = false,
        .in_fd = -1,
        .out_fd = -1,
        .capture = g_string_new(NULL),
        .line = g_string_new(NULL),
    };

    g_queue_init(&mon.pending_fds);
    monitor_hmp_greet(&mon);
    monitor_hmp_feed(&mon, (const char *)data, size);
    fuzz_verbose("%s", mon.capture->str);
    fuzz_monitor_settle();
    monitor_fds_cleanup(&mon);
    g_string_free(mon.capture, TRUE);
    g_string_free(mon.line, TRUE);
    return 0;
}
