/* Reliability qtests: many dumps under many QMP clients, and faults a dump survives. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "libqtest.h"

#define DEMO_ARGS "-demo -m 64 -smp 2 -dump-threads 1"
#define LOAD_DUMPS 200
/* The host takes 64 QMP clients at once (docs/compat.md M4): the driver + 63. */
#define POLLERS 63

/* ---------------------------------------------------------------------- */
/* Helpers                                                                  */
/* ---------------------------------------------------------------------- */

static char *tmp_file(QTestState *s, const char *name)
{
    return g_build_filename(qtest_tmpdir(s), name, NULL);
}

/* The dump-guest-memory request for path, with more JSON members. */
static char *dump_request(const char *path, const char *more)
{
    g_autofree char *proto = g_strconcat("file:", path, NULL);
    g_autofree char *q = qtest_json_str(proto);

    return g_strdup_printf("{\"execute\": \"dump-guest-memory\", \"arguments\": "
                           "{\"protocol\": %s, %s}}", q, more);
}

static void assert_ok(JsonObject *rsp)
{
    if (qtest_error_desc(rsp)) {
        g_test_message("unexpected error: %s", qtest_error_desc(rsp));
    }
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
}

/* DUMP_COMPLETED with status completed and no error. */
static void assert_completed(JsonObject *ev)
{
    JsonObject *data = json_object_get_object_member(ev, "data");
    JsonObject *res = json_object_get_object_member(data, "result");

    if (json_object_has_member(data, "error")) {
        g_test_message("dump failed: %s", json_object_get_string_member(data, "error"));
    }
    g_assert_false(json_object_has_member(data, "error"));
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "completed");
    g_assert_cmpint(json_object_get_int_member(res, "completed"), ==,
                    json_object_get_int_member(res, "total"));
    json_object_unref(ev);
}

/* A field of the host's /proc/PID/status in KiB. */
static long host_status_kib(QTestState *s, const char *field)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)qtest_pid(s));
    g_autofree char *text = NULL;
    const char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strstr(text, field);
    g_assert_nonnull(p);
    return strtol(p + strlen(field) + 1, NULL, 10);
}

/* ---------------------------------------------------------------------- */
/* Load                                                                     */
/* ---------------------------------------------------------------------- */

typedef struct Poller {
    QTestState *qs;
    unsigned polls, events;
} Poller;

/* Reads poller lines up to query-dump's answer, counting DUMP_COMPLETED. */
static void poller_answer(Poller *p)
{
    for (;;) {
        g_autofree char *line = qtest_qmp_receive_line(p->qs);

        if (strstr(line, "\"event\": \"DUMP_COMPLETED\"")) {
            p->events++;
        } else if (g_str_has_prefix(line, "{\"return\": {")) {
            g_assert_nonnull(strstr(line, "\"status\": \""));
            p->polls++;
            return;
        } else if (!strstr(line, "\"event\"")) {
            g_error("poller: unexpected line %s", line);
        }
    }
}

/*
 * One more query: the host sent every event of a dump the driver has seen
 * completed before it answers this, so they are all counted after it.
 */
static void poller_sync(Poller *p)
{
    const char query[] = "{\"execute\": \"query-dump\"}";

    qtest_qmp_send_raw(p->qs, query, strlen(query));
    poller_answer(p);
}

static const char *const load_formats[] = {
    "\"paging\": false",
    "\"paging\": false, \"format\": \"kdump-lzo\"",
    "\"paging\": false, \"format\": \"kdump-snappy\"",
    "\"paging\": true",
    "\"paging\": false, \"format\": \"kdump-raw-snappy\"",
    "\"paging\": false, \"format\": \"kdump-raw-lzo\"",
    "\"paging\": false, \"begin\": 16777216, \"length\": 16777216",
    "\"paging\": false, \"format\": \"kdump-snappy\"",
    "\"paging\": false",
    "\"paging\": false, \"format\": \"kdump-lzo\"",
};

/* zlib costs 5x the others: every 20th dump, so all formats are in the mix. */
static const char *load_format(unsigned i)
{
    if (i % 20 == 19) {
        return i % 40 == 19 ? "\"paging\": false, \"format\": \"kdump-zlib\"" :
                              "\"paging\": false, \"format\": \"kdump-raw-zlib\"";
    }
    return load_formats[i % G_N_ELEMENTS(load_formats)];
}

/* One detached dump, the pollers asking query-dump until DUMP_COMPLETED. */
static void load_dump(QTestState *s, Poller *pollers, const char *path, unsigned i)
{
    const char query[] = "{\"execute\": \"query-dump\"}";
    g_autofree char *more = g_strdup_printf("%s, \"detach\": true", load_format(i));
    g_autofree char *req = dump_request(path, more);
    JsonObject *ev = NULL;

    assert_ok(qtest_qmp(s, "%s", req));
    while (!ev) {
        for (int p = 0; p < POLLERS; p++) {
            qtest_qmp_send_raw(pollers[p].qs, query, strlen(query));
        }
        for (int p = 0; p < POLLERS; p++) {
            poller_answer(&pollers[p]);
        }
        /* A round every 20 ms: 3000 queries a second, not a busy loop. */
        ev = qtest_qmp_event_poll(s, "DUMP_COMPLETED", 20);
    }
    assert_completed(ev);
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
    g_assert_cmpint(g_unlink(path), ==, 0);
}

/*
 * 200 detached dumps in mixed formats one after another, while 63 other
 * clients poll query-dump (the driver is the 64th, the host's limit):
 * every DUMP_COMPLETED reaches the driver and every poller, no fd is left
 * open, and RSS grows by less than 4 MiB. One dump of each format runs
 * first, so the baseline includes what the first use of a codec or of the
 * compression pool allocates for good.
 */
static void test_load(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *path = tmp_file(s, "load.dump");
    Poller pollers[POLLERS];
    int fds0, fds1;
    long rss0, rss1;
    gint64 t0;

    for (int p = 0; p < POLLERS; p++) {
        pollers[p] = (Poller){ .qs = qtest_qmp_connect_extra(s) };
    }
    for (unsigned i = 0; i < 40; i++) {
        if (i < G_N_ELEMENTS(load_formats) || i % 20 == 19) {
            load_dump(s, pollers, path, i);
        }
    }
    for (int p = 0; p < POLLERS; p++) {
        poller_sync(&pollers[p]);
        pollers[p].polls = pollers[p].events = 0;
    }
    fds0 = qtest_count_fds(s);
    rss0 = host_status_kib(s, "VmRSS:");
    t0 = g_get_monotonic_time();
    for (unsigned i = 0; i < LOAD_DUMPS; i++) {
        load_dump(s, pollers, path, i);
        if (i % 50 == 49) {
            g_test_message("%u dumps after %.1f s", i + 1,
                           (g_get_monotonic_time() - t0) / 1e6);
        }
    }
    fds1 = qtest_count_fds(s);
    rss1 = host_status_kib(s, "VmRSS:");
    for (int p = 0; p < POLLERS; p++) {
        poller_sync(&pollers[p]);
        g_assert_cmpuint(pollers[p].events, ==, LOAD_DUMPS);
        g_assert_cmpuint(pollers[p].polls, >=, LOAD_DUMPS);
    }
    g_test_message("%d dumps in %.1f s, %u polls per client; fds %d -> %d, "
                   "RSS %ld -> %ld KiB", LOAD_DUMPS,
                   (g_get_monotonic_time() - t0) / 1e6, pollers[0].polls, fds0, fds1,
                   rss0, rss1);
    g_assert_cmpint(fds1, ==, fds0);
    g_assert_cmpint(rss1 - rss0, <, 4 * 1024);
    for (int p = 0; p < POLLERS; p++) {
        qtest_quit(pollers[p].qs);
    }
    qtest_quit(s);
}

/* ---------------------------------------------------------------------- */
/* Faults                                                                   */
/* ---------------------------------------------------------------------- */

/*
 * Two dump requests in one write: the first starts, the second gets 7.2's
 * text and creates nothing; the first completes and a third dump succeeds.
 */
static void test_two_at_once(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *a = tmp_file(s, "first.dump");
    g_autofree char *b = tmp_file(s, "second.dump");
    g_autofree char *ra = dump_request(a, "\"paging\": false, \"format\": "
                                          "\"kdump-zlib\", \"detach\": true");
    g_autofree char *rb = dump_request(b, "\"paging\": false, \"detach\": true");
    g_autofree char *both = g_strconcat(ra, rb, NULL);
    JsonObject *rsp;

    qtest_qmp_send_raw(s, both, strlen(both));
    assert_ok(qtest_qmp_receive(s));
    rsp = qtest_qmp_receive(s);
    g_assert_cmpstr(qtest_error_class(rsp), ==, "GenericError");
    g_assert_cmpstr(qtest_error_desc(rsp), ==,
                    "There is a dump in process, please wait.");
    json_object_unref(rsp);
    g_assert_false(g_file_test(b, G_FILE_TEST_EXISTS));
    assert_completed(qtest_qmp_event_wait(s, "DUMP_COMPLETED"));
    g_assert_true(g_file_test(a, G_FILE_TEST_IS_REGULAR));

    assert_ok(qtest_qmp(s, "%s", rb));
    assert_completed(qtest_qmp_event_wait(s, "DUMP_COMPLETED"));
    g_assert_true(g_file_test(b, G_FILE_TEST_IS_REGULAR));
    qtest_quit(s);
}

/*
 * SIGTERM while a detached dump writes a file: the host exits 0 within a
 * few seconds and the partial file is gone. The dump is kdump-zlib of a
 * 128 MiB demo guest on one thread (seconds); it is checked to be under
 * way, with more than half left, when the signal goes.
 */
static void test_sigterm_during_dump(void)
{
    QTestState *s = qtest_init("-demo -m 128 -smp 2 -dump-threads 1");
    g_autofree char *f = tmp_file(s, "term.dump");
    g_autofree char *req = dump_request(f, "\"paging\": false, \"format\": "
                                           "\"kdump-zlib\", \"detach\": true");
    int64_t completed = 0, total = 1;
    gint64 t0;
    int status;

    assert_ok(qtest_qmp(s, "%s", req));
    while (completed == 0) {
        JsonNode *ret = qtest_qmp_assert_success_ref(s, "{\"execute\": \"query-dump\"}");
        JsonObject *o = json_node_get_object(ret);

        g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "active");
        completed = json_object_get_int_member(o, "completed");
        total = json_object_get_int_member(o, "total");
        json_node_unref(ret);
        if (!completed) {
            g_usleep(10 * 1000);
        }
    }
    g_assert_cmpint(completed, <, total / 2);
    g_assert_true(g_file_test(f, G_FILE_TEST_IS_REGULAR));
    t0 = g_get_monotonic_time();
    g_assert_cmpint(kill(qtest_pid(s), SIGTERM), ==, 0);
    status = qtest_wait_exit(s, 10000);
    g_test_message("exited %.2f s after SIGTERM, %" G_GINT64_FORMAT " of %"
                   G_GINT64_FORMAT " bytes written",
                   (g_get_monotonic_time() - t0) / 1e6, completed, total);
    g_assert_cmpint(status, !=, -1);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS));
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/reliability/load", test_load);
    g_test_add_func("/reliability/two-at-once", test_two_at_once);
    g_test_add_func("/reliability/sigterm-during-dump", test_sigterm_during_dump);
    return g_test_run();
}
