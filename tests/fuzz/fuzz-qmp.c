/* Fuzz target: QMP bytes through the JSON streamer, request checks, QAPI visitors and dispatch. */
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "monitor/monitor-internal.h"
#include "sysemu/machine.h"

/* Stands in for any command the fuzzer must not run: it is not in the schema. */
#define BLOCKED "x-fuzz-blocked"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    MachineOptions opts = { .machine_type = (char *)"pc", .ram_size = 16u << 20,
                            .smp = 2 };

    g_assert(machine_init(&opts, NULL));
    return 0;
}

/* HMP's first word, split exactly as monitor_hmp_execute splits it. */
static bool hmp_line_is_safe(const char *line)
{
    size_t len;

    line += strspn(line, " \t");
    len = strcspn(line, " \t");
    return !(len == 4 && !strncmp(line, "quit", 4)) &&
           !(len == 1 && line[0] == 'q') &&
           !(len == 17 && !strncmp(line, "dump-guest-memory", 17));
}

/*
 * Whether a request may run as it is. quit would end the harness, and a dump
 * writes files: dump-guest-memory only runs with fd:, which always fails here
 * since no fd was ever passed, after every argument check ran.
 */
static bool request_is_safe(const char *command, JsonObject *req)
{
    JsonNode *args_node = json_object_get_member(req, "arguments");
    JsonObject *args = args_node && JSON_NODE_HOLDS_OBJECT(args_node)
                       ? json_node_get_object(args_node) : NULL;
    JsonNode *arg;

    if (!strcmp(command, "quit")) {
        return false;
    }
    if (!strcmp(command, "dump-guest-memory")) {
        arg = args ? json_object_get_member(args, "protocol") : NULL;
        return !arg || !JSON_NODE_HOLDS_VALUE(arg) ||
               json_node_get_value_type(arg) != G_TYPE_STRING ||
               g_str_has_prefix(json_node_get_string(arg), "fd:");
    }
    if (!strcmp(command, "human-monitor-command")) {
        arg = args ? json_object_get_member(args, "command-line") : NULL;
        return !arg || !JSON_NODE_HOLDS_VALUE(arg) ||
               json_node_get_value_type(arg) != G_TYPE_STRING ||
               hmp_line_is_safe(json_node_get_string(arg));
    }
    return true;
}

static void filter_and_handle(void *opaque, JsonNode *value, Error *err)
{
    Monitor *mon = opaque;

    if (value && JSON_NODE_HOLDS_OBJECT(value)) {
        JsonObject *req = json_node_get_object(value);
        static const char *const keys[] = { "execute", "exec-oob" };

        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
            JsonNode *c = json_object_get_member(req, keys[i]);

            if (c && JSON_NODE_HOLDS_VALUE(c) &&
                json_node_get_value_type(c) == G_TYPE_STRING &&
                !request_is_safe(json_node_get_string(c), req)) {
                json_object_set_string_member(req, keys[i], BLOCKED);
            }
        }
    }
    monitor_qmp_handle(mon, value, err);
    fuzz_verbose("%.*s", (int)MIN(mon->capture->len, 300), mon->capture->str);
    /* Replies are only checked for not crashing; keep memory flat. */
    g_string_truncate(mon->capture, 0);
}

/*
 * Input: flags (1): bit 0 starts negotiated, bit 1 enables oob; split (2);
 * then the bytes of the connection, fed in two writes split there (values
 * may span reads).
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
    mon.js = qmp_json_streamer_new(filter_and_handle, &mon);
    monitor_qmp_greet(&mon);
    qmp_json_streamer_feed(mon.js, (const char *)data, split);
    qmp_json_streamer_feed(mon.js, (const char *)data + split, size - split);
    qmp_json_streamer_free(mon.js);
    /* Events (stop, cont) are delivered from the main loop. */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    monitor_fds_cleanup(&mon);
    g_string_free(mon.capture, TRUE);
    return 0;
}
