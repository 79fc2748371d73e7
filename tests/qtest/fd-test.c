/* fd passing tests: getfd/closefd, add-fd/remove-fd/query-fdsets, and no fd leaks. */
#include "libqtest.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static void assert_error(JsonObject *rsp, const char *desc)
{
    g_assert_cmpstr(qtest_error_class(rsp), ==, "GenericError");
    g_assert_cmpstr(qtest_error_desc(rsp), ==, desc);
    json_object_unref(rsp);
}

/* A request for cmd whose arguments are the JSON members in args. */
#define REQ(cmd, args) "{\"execute\": \"" cmd "\", \"arguments\": {" args "}}"

static int64_t return_int(JsonObject *rsp, const char *member)
{
    JsonObject *ret = json_object_get_object_member(rsp, "return");
    return json_object_get_int_member(ret, member);
}

static void assert_ok(JsonObject *rsp)
{
    if (!json_object_has_member(rsp, "return")) {
        g_error("unexpected error: %s", qtest_error_desc(rsp));
    }
    json_object_unref(rsp);
}

static void test_getfd_closefd(void)
{
    QTestState *s = qtest_init("-S");
    int base = qtest_count_fds(s);
    int p[2];

    g_assert_cmpint(base, >, 0);
    g_assert_cmpint(pipe(p), ==, 0);

    assert_error(qtest_qmp(s, REQ("getfd", "\"fdname\": \"x\"")),
                 "No file descriptor supplied via SCM_RIGHTS");
    assert_error(qtest_qmp_fds(s, &p[1], 1, "{\"execute\": \"getfd\", "
                               "\"arguments\": {\"fdname\": \"1x\"}}"),
                 "Parameter 'fdname' expects a name not starting with a digit");
    g_assert_cmpint(qtest_count_fds(s), ==, base);

    assert_ok(qtest_qmp_fds(s, &p[1], 1, "{\"execute\": \"getfd\", "
                            "\"arguments\": {\"fdname\": \"out\"}}"));
    g_assert_cmpint(qtest_count_fds(s), ==, base + 1);
    /* The same name again replaces the fd: still one. */
    assert_ok(qtest_qmp_fds(s, &p[1], 1, "{\"execute\": \"getfd\", "
                            "\"arguments\": {\"fdname\": \"out\"}}"));
    g_assert_cmpint(qtest_count_fds(s), ==, base + 1);

    /* The host really holds the pipe's write end: closing ours leaves it open. */
    close(p[1]);
    g_assert_cmpint(fcntl(p[0], F_SETFL, O_NONBLOCK), ==, 0);
    char c;
    g_assert_cmpint(read(p[0], &c, 1), ==, -1);   /* EAGAIN, not EOF */

    assert_ok(qtest_qmp(s, REQ("closefd", "\"fdname\": \"out\"")));
    g_assert_cmpint(qtest_count_fds(s), ==, base);
    g_assert_cmpint(read(p[0], &c, 1), ==, 0);    /* now EOF: the last writer is gone */
    assert_error(qtest_qmp(s, REQ("closefd", "\"fdname\": \"out\"")),
                 "File descriptor named 'out' not found");
    close(p[0]);
    qtest_quit(s);
}

static void test_unclaimed_fds_closed(void)
{
    QTestState *s = qtest_init("-S");
    int base = qtest_count_fds(s);
    int fds[3];

    for (int i = 0; i < 3; i++) {
        fds[i] = open("/dev/null", O_RDONLY);
    }
    /* A command that takes no fd must not keep the ones sent with it. */
    assert_ok(qtest_qmp_fds(s, fds, 3, "{\"execute\": \"query-status\"}"));
    g_assert_cmpint(qtest_count_fds(s), ==, base);
    /* Nor a failing getfd, nor a broken request. */
    JsonObject *r = qtest_qmp_fds(s, fds, 3, "{\"execute\": \"nope\"}");
    json_object_unref(r);
    g_assert_cmpint(qtest_count_fds(s), ==, base);

    /* A client that disconnects takes its named fds with it. */
    QTestState *c = qtest_qmp_connect_extra(s);
    assert_ok(qtest_qmp_fds(c, fds, 1, "{\"execute\": \"getfd\", "
                            "\"arguments\": {\"fdname\": \"a\"}}"));
    assert_ok(qtest_qmp_fds(c, fds, 1, "{\"execute\": \"getfd\", "
                            "\"arguments\": {\"fdname\": \"b\"}}"));
    g_assert_cmpint(qtest_count_fds(s), ==, base + 3);   /* 2 fds + the connection */
    /* Names are per monitor: the first client does not see them. */
    assert_error(qtest_qmp(s, REQ("closefd", "\"fdname\": \"a\"")),
                 "File descriptor named 'a' not found");
    qtest_quit(c);
    /* The close is seen by the host's main loop; give it a moment. */
    for (int i = 0; i < 200 && qtest_count_fds(s) != base; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_count_fds(s), ==, base);
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
    qtest_quit(s);
}

static JsonArray *query_fdsets(QTestState *s, JsonNode **keep)
{
    *keep = qtest_qmp_assert_success_ref(s, "{\"execute\": \"query-fdsets\"}");
    return json_node_get_array(*keep);
}

static void test_fdsets(void)
{
    QTestState *s = qtest_init("-S");
    int base = qtest_count_fds(s);
    int w = open("/dev/null", O_WRONLY);
    int r = open("/dev/null", O_RDONLY);

    assert_error(qtest_qmp(s, "{\"execute\": \"add-fd\"}"),
                 "No file descriptor supplied via SCM_RIGHTS");
    assert_error(qtest_qmp_fds(s, &w, 1, "{\"execute\": \"add-fd\", "
                               "\"arguments\": {\"fdset-id\": -2}}"),
                 "Parameter 'fdset-id' expects a non-negative value");
    g_assert_cmpint(qtest_count_fds(s), ==, base);

    JsonObject *rsp = qtest_qmp_fds(s, &w, 1, REQ("add-fd", "\"fdset-id\": 1, "
                                                  "\"opaque\": \"first\""));
    g_assert_cmpint(return_int(rsp, "fdset-id"), ==, 1);
    int64_t fd1 = return_int(rsp, "fd");
    json_object_unref(rsp);

    rsp = qtest_qmp_fds(s, &r, 1, REQ("add-fd", "\"fdset-id\": 1"));
    int64_t fd2 = return_int(rsp, "fd");
    json_object_unref(rsp);

    /* Without an id: the lowest free one, 0. */
    rsp = qtest_qmp_fds(s, &r, 1, "{\"execute\": \"add-fd\"}");
    g_assert_cmpint(return_int(rsp, "fdset-id"), ==, 0);
    int64_t fd3 = return_int(rsp, "fd");
    json_object_unref(rsp);
    g_assert_cmpint(qtest_count_fds(s), ==, base + 3);

    /* As QEMU 7.2 lists them: highest set first, fds in the order they came. */
    JsonNode *keep;
    JsonArray *sets = query_fdsets(s, &keep);
    g_assert_cmpuint(json_array_get_length(sets), ==, 2);
    JsonObject *set1 = json_array_get_object_element(sets, 0);
    g_assert_cmpint(json_object_get_int_member(set1, "fdset-id"), ==, 1);
    JsonArray *fds = json_object_get_array_member(set1, "fds");
    g_assert_cmpuint(json_array_get_length(fds), ==, 2);
    JsonObject *f0 = json_array_get_object_element(fds, 0);
    JsonObject *f1 = json_array_get_object_element(fds, 1);
    g_assert_cmpint(json_object_get_int_member(f0, "fd"), ==, fd1);
    g_assert_cmpstr(json_object_get_string_member(f0, "opaque"), ==, "first");
    g_assert_cmpint(json_object_get_int_member(f1, "fd"), ==, fd2);
    g_assert_false(json_object_has_member(f1, "opaque"));
    JsonObject *set0 = json_array_get_object_element(sets, 1);
    g_assert_cmpint(json_object_get_int_member(set0, "fdset-id"), ==, 0);
    JsonArray *fds0 = json_object_get_array_member(set0, "fds");
    JsonObject *f00 = json_array_get_object_element(fds0, 0);
    g_assert_cmpint(json_object_get_int_member(f00, "fd"), ==, fd3);
    json_node_unref(keep);

    assert_error(qtest_qmp(s, "{\"execute\": \"remove-fd\", "
                           "\"arguments\": {\"fdset-id\": 1, \"fd\": 9999}}"),
                 "File descriptor named 'fdset-id:1, fd:9999' not found");
    assert_error(qtest_qmp(s, REQ("remove-fd", "\"fdset-id\": 7")),
                 "File descriptor named 'fdset-id:7' not found");

    assert_ok(qtest_qmp(s, REQ("remove-fd", "\"fdset-id\": 1, "
                               "\"fd\": %" G_GINT64_FORMAT), fd1));
    g_assert_cmpint(qtest_count_fds(s), ==, base + 2);
    assert_ok(qtest_qmp(s, REQ("remove-fd", "\"fdset-id\": 1")));
    assert_ok(qtest_qmp(s, REQ("remove-fd", "\"fdset-id\": 0")));
    g_assert_cmpint(qtest_count_fds(s), ==, base);
    sets = query_fdsets(s, &keep);
    g_assert_cmpuint(json_array_get_length(sets), ==, 0);
    json_node_unref(keep);

    close(w);
    close(r);
    qtest_quit(s);
}

static void test_fdsets_released_with_last_client(void)
{
    QTestState *s = qtest_init("-S");
    int base = qtest_count_fds(s);
    int w = open("/dev/null", O_WRONLY);

    assert_ok(qtest_qmp_fds(s, &w, 1, "{\"execute\": \"add-fd\"}"));
    close(w);
    g_assert_cmpint(qtest_count_fds(s), ==, base + 1);

    /* Another client's coming and going changes nothing ... */
    QTestState *c = qtest_qmp_connect_extra(s);
    qtest_quit(c);
    for (int i = 0; i < 200 && qtest_count_fds(s) != base + 1; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_count_fds(s), ==, base + 1);

    /* ... nor does nobody being connected while the guest is paused (7.2) ... */
    qtest_qmp_disconnect(s);
    for (int i = 0; i < 200 && qtest_count_fds(s) != base; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_count_fds(s), ==, base);
    qtest_qmp_reconnect(s);
    JsonNode *keep;
    JsonArray *sets = query_fdsets(s, &keep);
    g_assert_cmpuint(json_array_get_length(sets), ==, 1);
    json_node_unref(keep);

    /* ... but with nobody connected to a running guest QEMU releases the sets. */
    assert_ok(qtest_qmp(s, "{\"execute\": \"cont\"}"));
    qtest_qmp_disconnect(s);
    for (int i = 0; i < 200 && qtest_count_fds(s) != base - 1; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_count_fds(s), ==, base - 1);
    qtest_qmp_reconnect(s);
    sets = query_fdsets(s, &keep);
    g_assert_cmpuint(json_array_get_length(sets), ==, 0);
    json_node_unref(keep);
    qtest_quit(s);
}

static void wait_fd_count(QTestState *s, int want)
{
    for (int i = 0; i < 500 && qtest_count_fds(s) != want; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_count_fds(s), ==, want);
}

/*
 * The dump's dup of a set's fd is handed back when the dump ends, so the set
 * still goes with the last client (test-fdsets covers a dump in progress).
 */
static void test_fdset_released_after_dump(void)
{
    QTestState *s = qtest_init("-m 32M");
    int base = qtest_count_fds(s);
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "vmcore", NULL);
    int w = open(path, O_WRONLY | O_CREAT, 0600);
    JsonNode *keep;

    g_assert_cmpint(w, >=, 0);
    assert_ok(qtest_qmp_fds(s, &w, 1, "{\"execute\": \"add-fd\"}"));
    close(w);
    assert_ok(qtest_qmp(s, REQ("dump-guest-memory", "\"paging\": false, "
                               "\"protocol\": \"file:/dev/fdset/0\"")));
    g_assert_cmpint(qtest_count_fds(s), ==, base + 1);
    JsonArray *sets = query_fdsets(s, &keep);
    g_assert_cmpuint(json_array_get_length(sets), ==, 1);
    json_node_unref(keep);

    qtest_qmp_disconnect(s);
    wait_fd_count(s, base - 1);
    qtest_qmp_reconnect(s);
    sets = query_fdsets(s, &keep);
    g_assert_cmpuint(json_array_get_length(sets), ==, 0);
    json_node_unref(keep);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fd/getfd-closefd", test_getfd_closefd);
    g_test_add_func("/fd/unclaimed-fds-closed", test_unclaimed_fds_closed);
    g_test_add_func("/fd/fdsets", test_fdsets);
    g_test_add_func("/fd/fdsets-released-with-last-client",
                    test_fdsets_released_with_last_client);
    g_test_add_func("/fd/fdset-released-after-dump", test_fdset_released_after_dump);
    return g_test_run();
}
