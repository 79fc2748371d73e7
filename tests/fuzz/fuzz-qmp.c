/* Fuzz target: QMP bytes through the JSON streamer, request checks, QAPI visitors and dispatch. */
#include <string.h>

#include <glib.h>

#include "fuzz-monitor.h"
#include "fuzz.h"
#include "monitor/monitor-internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_monitor_machine_init();
    return 0;
}

static void handle(void *opaque, JsonNode *value, Error *err)
{
    Monitor *mon = opaque;

    monitor_qmp_handle(mon, value, err);
    fuzz_verbose("%.*s", (int)MIN(mon->capture->len, 300), mon->capture->str);
    /* Replies are only checked for not crashing; keep memory flat. */
    g_string_truncate(mon->capture, 0);
}

/*
 * Input: flags (1): bit 0 starts negotiated, bit 1 enables oob; split (2);
 * then the bytes of the connection, fed in two writes split there (values
 * may span reads). Every command runs; see fuzz-monitor.h for dumps and quit.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t flags = fuzz_take(&data, &size, 1);
    size_t split = fuzz_take(&data, &size, 2);
    Monitor mon = {
        .qmp = true,
        .in_fd = -1,
        .out_fd = -1,
        .capture = g_string_new(NULL),
        .negotiated = flags & 1,
        .oob_enabled = flags & 2,
    };

    split = MIN(split, size);
    g_queue_init(&mon.pending_fds);
    mon.js = qmp_json_streamer_new(handle, &mon);
    monitor_qmp_greet(&mon);
    qmp_json_streamer_feed(mon.js, (const char *)data, split);
    qmp_json_streamer_feed(mon.js, (const char *)data + split, size - split);
    qmp_json_streamer_free(mon.js);
    fuzz_monitor_settle();
    monitor_fds_cleanup(&mon);
    g_string_free(mon.capture, TRUE);
    return 0;
}
