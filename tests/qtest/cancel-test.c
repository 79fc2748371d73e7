/* qtests of dump-cancel: files, stalled pipes, every format, HMP, libvirt's flow. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-host.h"
#include "libqtest.h"

#define DEMO_ARGS "-demo -m 64 -smp 2"
#define RAM_64M_PC 67371008      /* 64 MiB pc guest incl. pc.bios/pc.rom, as QEMU */
/*
 * Into a file the dump must still be running when the cancel arrives: 1 GiB
 * of demo RAM (40% text that zlib works on) with one compression thread is
 * seconds of work, against milliseconds between the two commands.
 */
#define SLOW_ARGS "-demo -m 1G -smp 2 -dump-threads 1"

/*
 * The libvirt-style flow dumps live, as the issue asks: the guest runs on
 * while the cancelled dump and the complete one after it are written.
 */
#define FLOW_DUMP_EXTRA ", \"live\": true"

/* A generous bound for "ends within a second" on a loaded 2-core machine. */
#define CANCEL_BOUND_US (10 * G_USEC_PER_SEC)

/* ---------------------------------------------------------------------- */
/* Helpers                                                                  */
/* ---------------------------------------------------------------------- */

static char *tmp_file(QTestState *s, const char *name)
{
    return g_build_filename(qtest_tmpdir(s), name, NULL);
}

static void assert_no_dump(JsonObject *rsp)
{
    g_assert_nonnull(rsp);
    g_assert_cmpstr(qtest_error_class(rsp), ==, "GenericError");
    g_assert_cmpstr(qtest_error_desc(rsp), ==, "There is no dump in progress");
    json_object_unref(rsp);
}

static JsonObject *cancel(QTestState *s)
{
    return qtest_qmp(s, "{\"execute\": \"dump-cancel\"}");
}

/* A detached dump of the whole guest; protocol is the JSON string's content. */
static void start_dump(QTestState *s, const char *protocol, const char *format,
                       const char *extra)
{
    g_autofree char *q = qtest_json_str(protocol);

    qtest_assert_ok(qtest_qmp(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                        "{\"paging\": false, \"protocol\": %s, \"format\": \"%s\", "
                        "\"detach\": true%s}}", q, format, extra ? extra : ""));
}

static char *query_status(QTestState *s, int64_t *completed, int64_t *total)
{
    JsonNode *ret = qtest_qmp_assert_success_ref(s, "{\"execute\": \"query-dump\"}");
    JsonObject *o = json_node_get_object(ret);
    char *st = g_strdup(json_object_get_string_member(o, "status"));

    if (completed) {
        *completed = json_object_get_int_member(o, "completed");
    }
    if (total) {
        *total = json_object_get_int_member(o, "total");
    }
    json_node_unref(ret);
    return st;
}

/* DUMP_COMPLETED of a cancelled dump: failed, "dump: cancelled", partial counters. */
static void assert_cancelled_event(QTestState *s)
{
    JsonObject *ev = qtest_qmp_event_poll(s, "DUMP_COMPLETED", 0);
    JsonObject *data, *res;

    /* dump-cancel returns after the event: it is already here. */
    g_assert_nonnull(ev);
    data = json_object_get_object_member(ev, "data");
    res = json_object_get_object_member(data, "result");
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "failed");
    g_assert_cmpstr(json_object_get_string_member(data, "error"), ==,
                    "dump: cancelled");
    g_assert_cmpint(json_object_get_int_member(res, "completed"), <,
                    json_object_get_int_member(res, "total"));
    json_object_unref(ev);
}

/*
 * After a cancel: query-dump says failed, a guest that ran before runs
 * again (one RESUME), no cancel is left pending, and the next dump is whole.
 */
static void assert_after_cancel(QTestState *s, bool was_running)
{
    g_autofree char *st = query_status(s, NULL, NULL);
    g_autofree char *run = qtest_run_status(s);
    g_autofree char *f = tmp_file(s, "after-cancel.elf");
    g_autofree char *proto = g_strconcat("file:", f, NULL);
    JsonObject *ev, *res;
    struct stat sb;

    g_assert_cmpstr(st, ==, "failed");
    if (was_running) {
        /* The cancelled dump paused the guest and gave it back. */
        ev = qtest_qmp_event_poll(s, "STOP", 0);
        g_assert_nonnull(ev);
        json_object_unref(ev);
        ev = qtest_qmp_event_poll(s, "RESUME", 0);
        g_assert_nonnull(ev);
        json_object_unref(ev);
    } else {
        g_assert_null(qtest_qmp_event_poll(s, "RESUME", 0));
    }
    g_assert_cmpstr(run, ==, was_running ? "running" : "paused");
    assert_no_dump(cancel(s));

    start_dump(s, proto, "elf", NULL);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    res = json_object_get_object_member(json_object_get_object_member(ev, "data"),
                                        "result");
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "completed");
    g_assert_cmpint(json_object_get_int_member(res, "completed"), ==,
                    json_object_get_int_member(res, "total"));
    g_assert_cmpint(stat(f, &sb), ==, 0);
    g_assert_cmpint(sb.st_size, >, json_object_get_int_member(res, "total"));
    json_object_unref(ev);
    g_assert_cmpint(unlink(f), ==, 0);
    if (was_running) {
        /* That dump's own pause: the next case starts with no event queued. */
        json_object_unref(qtest_qmp_event_wait(s, "STOP"));
        json_object_unref(qtest_qmp_event_wait(s, "RESUME"));
    }
}

/*
 * Waits until the writer is stuck on the pipe: it is (nearly) full and
 * progress stood still over the last polls.
 */
static void wait_pipe_stalled(QTestState *s, int rfd)
{
    int64_t last = -1, now = 0;
    int queued = 0, still = 0;
    int size = fcntl(rfd, F_GETPIPE_SZ);

    g_assert_cmpint(size, >, 0);
    for (int i = 0; i < 600; i++) {
        g_autofree char *st = query_status(s, &now, NULL);

        g_assert_cmpstr(st, ==, "active");
        g_assert_cmpint(ioctl(rfd, FIONREAD, &queued), ==, 0);
        still = (queued >= size / 2 && now == last) ? still + 1 : 0;
        if (still == 3) {
            return;
        }
        last = now;
        g_usleep(50 * 1000);
    }
    g_error("the dump never stalled on the full pipe");
}

/* The write end went with the dump: the reader gets EOF after what was queued. */
static void assert_pipe_closed(int rfd)
{
    uint8_t buf[65536];

    for (;;) {
        struct pollfd p = { .fd = rfd, .events = POLLIN };
        ssize_t n;

        g_assert_cmpint(poll(&p, 1, 10000), ==, 1);
        n = read(rfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >=, 0);
        if (n == 0) {
            return;
        }
    }
}

static gint64 timed_cancel(QTestState *s)
{
    gint64 t0 = g_get_monotonic_time();

    qtest_assert_ok(cancel(s));
    return g_get_monotonic_time() - t0;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                    */
/* ---------------------------------------------------------------------- */

/* No dump, a dump in the monitor that already ended, a completed detached one. */
static void test_no_dump(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "done.elf");
    g_autofree char *proto = g_strconcat("file:", f, NULL);
    g_autofree char *st = NULL;
    JsonObject *ev;

    assert_no_dump(cancel(s));
    start_dump(s, proto, "elf", NULL);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    json_object_unref(ev);
    assert_no_dump(cancel(s));
    /* The refusal changes nothing: the last dump is still reported completed. */
    st = query_status(s, NULL, NULL);
    g_assert_cmpstr(st, ==, "completed");
    g_assert_true(g_file_test(f, G_FILE_TEST_IS_REGULAR));
    qtest_quit(s);
}

/*
 * Into a pipe whose reader stopped, in every flattened format the build
 * has (kdump with its compression threads): the worker waits for room and
 * the cancel must still end the dump at once.
 */
static void test_stalled_pipe(void)
{
    static const char *const formats[] = {
        "elf", "kdump-zlib",
#ifdef CONFIG_LZO
        "kdump-lzo",
#endif
#ifdef CONFIG_SNAPPY
        "kdump-snappy",
#endif
#ifdef CONFIG_ZSTD
        "kdump-zstd",
#endif
    };
    QTestState *s = qtest_init(DEMO_ARGS);
    int before = qtest_count_fds(s);

    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        int fds[2];
        gint64 us;

        g_assert_cmpint(pipe(fds), ==, 0);
        qtest_assert_ok(qtest_qmp_fds(s, &fds[1], 1,
            "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"stalled\"}}"));
        start_dump(s, "fd:stalled", formats[i], NULL);
        wait_pipe_stalled(s, fds[0]);
        /* The write end's description is shared: the sink waits in poll(). */
        g_assert_cmpint(fcntl(fds[1], F_GETFL) & O_NONBLOCK, ==, O_NONBLOCK);
        us = timed_cancel(s);
        g_test_message("%s: dump-cancel with the writer waiting on a full pipe "
                       "took %.1f ms", formats[i], us / 1000.0);
        g_assert_cmpint(us, <, CANCEL_BOUND_US);
        assert_cancelled_event(s);
        /* ...and the client gets it back as it gave it. */
        g_assert_cmpint(fcntl(fds[1], F_GETFL) & O_NONBLOCK, ==, 0);
        close(fds[1]);
        assert_pipe_closed(fds[0]);
        close(fds[0]);
        g_assert_cmpint(qtest_count_fds(s), ==, before);
        assert_after_cancel(s, true);
    }
    qtest_quit(s);
}

/*
 * Into a file the dump created, one format per writer and sink kind: the
 * file is removed. The guest was stopped before, so it stays stopped.
 */
static void test_created_file(void)
{
    static const struct {
        const char *format;
        bool paused;
    } cases[] = {
        /* 1 GiB of ELF is at least hundreds of ms of writing, even here. */
        { "elf", false },
        { "kdump-zlib", false },
        { "kdump-raw-zlib", true },
#ifdef CONFIG_LZO
        { "kdump-raw-lzo", false },
#endif
#ifdef CONFIG_SNAPPY
        { "kdump-raw-snappy", false },
#endif
#ifdef CONFIG_ZSTD
        { "kdump-raw-zstd", false },
#endif
    };
    QTestState *s = qtest_init(SLOW_ARGS);
    int before = qtest_count_fds(s);

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *f = tmp_file(s, cases[i].format);
        g_autofree char *proto = g_strconcat("file:", f, NULL);
        g_autofree char *st = NULL;
        int64_t done = 0, total = 0;
        JsonObject *ev;

        if (cases[i].paused) {
            qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
            json_object_unref(qtest_qmp_event_wait(s, "STOP"));
        }
        start_dump(s, proto, cases[i].format, NULL);
        st = query_status(s, &done, &total);
        g_assert_cmpstr(st, ==, "active");
        g_assert_true(g_file_test(f, G_FILE_TEST_EXISTS));
        g_test_message("%s: cancelled at %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                       " bytes", cases[i].format, done, total);
        qtest_assert_ok(cancel(s));
        assert_cancelled_event(s);
        g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS));
        g_assert_cmpint(qtest_count_fds(s), ==, before);
        assert_after_cancel(s, !cases[i].paused);
        if (cases[i].paused) {
            qtest_qmp_assert_success(s, "{\"execute\": \"cont\"}");
            ev = qtest_qmp_event_wait(s, "RESUME");
            json_object_unref(ev);
        }
    }
    qtest_quit(s);
}

/*
 * HMP: dump-cancel of a dump into a FIFO nobody reads (the file existed, so
 * it stays), info dump, and the error without a dump.
 */
static void test_hmp(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *fifo = tmp_file(s, "hmp.fifo");
    g_autofree char *out = NULL, *info = NULL, *again = NULL, *help = NULL;
    int rfd;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    g_assert_cmpint(rfd, >=, 0);
    out = qtest_hmp(s, "dump-guest-memory -d %s", fifo);
    g_assert_cmpstr(out, ==, "");
    wait_pipe_stalled(s, rfd);
    g_free(out);
    out = qtest_hmp(s, "dump-cancel");
    g_assert_cmpstr(out, ==, "");
    assert_cancelled_event(s);
    info = qtest_hmp(s, "info dump");
    g_assert_cmpstr(info, ==, "Status: failed\r\n");
    g_assert_true(g_file_test(fifo, G_FILE_TEST_EXISTS));
    assert_pipe_closed(rfd);
    close(rfd);
    again = qtest_hmp(s, "dump-cancel");
    g_assert_cmpstr(again, ==, "Error: There is no dump in progress\r\n");
    help = qtest_hmp(s, "help dump-cancel");
    g_assert_nonnull(strstr(help, "dump-cancel"));
    assert_after_cancel(s, true);
    qtest_quit(s);
}

/*
 * What libvirt does for a memory-only dump and domjobabort: getfd with a
 * pipe, a detached dump, query-dump polling while it reads, dump-cancel;
 * then, on the same connection, a whole dump through a new pipe.
 */
static void test_libvirt_flow(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autoptr(GByteArray) got = g_byte_array_new();
    uint8_t buf[65536];
    int64_t done = 0, last = 0, total = 0;
    int fds[2];
    gint64 us;
    JsonObject *ev, *res;

    json_object_unref(qtest_qmp(s,
        "{\"execute\": \"query-dump-guest-memory-capability\"}"));
    g_assert_cmpint(pipe(fds), ==, 0);
    qtest_assert_ok(qtest_qmp_fds(s, &fds[1], 1,
        "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"dump\"}}"));
    close(fds[1]);
    start_dump(s, "fd:dump", "kdump-zlib", FLOW_DUMP_EXTRA);
    /* Read a few MiB while polling, as libvirt's job info does, then stop. */
    while (got->len < (4u << 20)) {
        g_autofree char *st = query_status(s, &done, &total);
        ssize_t n = read(fds[0], buf, sizeof(buf));

        g_assert_cmpstr(st, ==, "active");
        g_assert_cmpint(done, >=, last);
        g_assert_cmpint(done, <, total);
        last = done;
        g_assert_cmpint(n, >, 0);
        g_byte_array_append(got, buf, n);
    }
    g_assert_cmpmem(got->data, 12, "makedumpfile", 12);
    us = timed_cancel(s);
    g_test_message("libvirt flow: dump-cancel took %.1f ms", us / 1000.0);
    g_assert_cmpint(us, <, CANCEL_BOUND_US);
    assert_cancelled_event(s);
    assert_pipe_closed(fds[0]);
    close(fds[0]);
    g_autofree char *st = query_status(s, NULL, NULL);
    g_assert_cmpstr(st, ==, "failed");
    json_object_unref(qtest_qmp_event_wait(s, "RESUME"));

    /* The same connection: a new pipe, a whole dump. */
    g_byte_array_set_size(got, 0);
    g_assert_cmpint(pipe(fds), ==, 0);
    qtest_assert_ok(qtest_qmp_fds(s, &fds[1], 1,
        "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"dump\"}}"));
    close(fds[1]);
    start_dump(s, "fd:dump", "elf", FLOW_DUMP_EXTRA);
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof(buf));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >=, 0);
        if (n == 0) {
            break;
        }
        g_byte_array_append(got, buf, n);
    }
    close(fds[0]);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    res = json_object_get_object_member(json_object_get_object_member(ev, "data"),
                                        "result");
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "completed");
    g_assert_cmpint(json_object_get_int_member(res, "total"), ==, RAM_64M_PC);
    json_object_unref(ev);
    g_assert_cmpmem(got->data, 4, "\177ELF", 4);
    g_assert_cmpuint(got->len, >, RAM_64M_PC);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dump-cancel/no-dump", test_no_dump);
    g_test_add_func("/dump-cancel/stalled-pipe", test_stalled_pipe);
    g_test_add_func("/dump-cancel/created-file", test_created_file);
    g_test_add_func("/dump-cancel/hmp", test_hmp);
    g_test_add_func("/dump-cancel/libvirt-flow", test_libvirt_flow);
    return g_test_run();
}
