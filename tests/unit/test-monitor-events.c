/* Unit test: events from other threads reach QMP clients in order, via the main loop. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "monitor/chardev.h"
#include "qmp-unit-client.h"
#include "qapi-events.h"
#include "qapi/qmp-dispatch.h"

#define EVENTS_PER_THREAD 200
#define THREADS 3

static gpointer emitter(gpointer opaque)
{
    int id = GPOINTER_TO_INT(opaque);
    for (int i = 0; i < EVENTS_PER_THREAD; i++) {
        JsonObject *data = json_object_new();
        json_object_set_int_member(data, "thread", id);
        json_object_set_int_member(data, "seq", i);
        qapi_event_emit("TEST_EVENT", data);
    }
    return NULL;
}

static void test_events_from_threads(void)
{
    GError *gerr = NULL;
    Error *err = NULL;
    g_autofree char *dir = g_dir_make_tmp("gd-monev-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);

    /*
     * Own the main context for the whole test, as g_main_loop_run does in
     * the host: emitters on other threads must then queue, not deliver.
     */
    g_assert_true(g_main_context_acquire(NULL));
    g_assert_true(monitor_add_qmp(spec, &err));
    g_assert_true(monitor_start(&err));

    QmpUnitClient c = qmp_unit_client_connect(path);

    g_autofree char *greeting = qmp_unit_client_line(&c);
    g_assert_true(g_str_has_prefix(greeting, "{\"QMP\": "));
    /* Not negotiated yet: no events for this client. */
    qapi_event_emit("EARLY", NULL);
    qmp_unit_client_negotiate(&c);

    GThread *t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = g_thread_new("emitter", emitter, GINT_TO_POINTER(i));
    }
    int next[THREADS] = { 0 };
    for (int n = 0; n < THREADS * EVENTS_PER_THREAD; n++) {
        g_autofree char *line = qmp_unit_client_line(&c);
        g_autoptr(JsonParser) p = json_parser_new();
        g_assert_true(json_parser_load_from_data(p, line, -1, NULL));
        JsonObject *ev = json_node_get_object(json_parser_get_root(p));
        g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, "TEST_EVENT");
        JsonObject *data = json_object_get_object_member(ev, "data");
        int th = json_object_get_int_member(data, "thread");
        /* Each thread's events arrive complete and in its order. */
        g_assert_cmpint(json_object_get_int_member(data, "seq"), ==, next[th]);
        next[th]++;
    }
    for (int i = 0; i < THREADS; i++) {
        g_thread_join(t[i]);
    }
    monitor_cleanup();
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    qmp_unit_client_close(&c);
    g_rmdir(dir);
    g_main_context_release(NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/monitor/events-from-threads", test_events_from_threads);
    return g_test_run();
}
