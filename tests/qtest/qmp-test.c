/* QMP protocol tests: greeting, negotiation, malformed input, id echo, events, exit. */
#include "libqtest.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config-host.h"

#define GREETING \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " \
    "\"package\": \"guestdump " GUESTDUMP_VERSION "\"}, \"capabilities\": [\"oob\"]}}"

static void assert_error(JsonObject *rsp, const char *cls, const char *desc)
{
    g_assert_nonnull(rsp);
    g_assert_cmpstr(qtest_error_class(rsp), ==, cls);
    g_assert_cmpstr(qtest_error_desc(rsp), ==, desc);
    json_object_unref(rsp);
}

static void assert_usable(QTestState *s)
{
    JsonObject *rsp = qtest_qmp(s, "{\"execute\": \"query-status\"}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
}

static int raw_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    return fd;
}

static char *raw_line(int fd)
{
    GString *s = g_string_new(NULL);
    char c;
    while (read(fd, &c, 1) == 1) {
        g_string_append_c(s, c);
        if (c == '\n') {
            break;
        }
    }
    return g_string_free(s, FALSE);
}

static void test_greeting(void)
{
    QTestState *s = qtest_init_full("-S", QTEST_NO_NEGOTIATE);
    /* Byte for byte, CR LF included, as QEMU 7.2 would send it. */
    int fd = raw_connect(qtest_qmp_socket_path(s));
    g_autofree char *line = raw_line(fd);
    g_assert_cmpstr(line, ==, GREETING "\r\n");
    close(fd);

    JsonObject *qmp = json_object_get_object_member(qtest_greeting(s), "QMP");
    JsonObject *qemu = json_object_get_object_member(
        json_object_get_object_member(qmp, "version"), "qemu");
    g_assert_cmpint(json_object_get_int_member(qemu, "major"), ==, 7);
    g_assert_cmpint(json_object_get_int_member(qemu, "minor"), ==, 2);
    qtest_quit(s);
}

static void test_negotiation(void)
{
    QTestState *s = qtest_init_full("-S", QTEST_NO_NEGOTIATE);

    assert_error(qtest_qmp(s, "{\"execute\": \"query-status\"}"), "CommandNotFound",
                 "Expecting capabilities negotiation with 'qmp_capabilities'");
    assert_error(qtest_qmp(s, "{\"execute\": \"no-such\"}"), "CommandNotFound",
                 "Expecting capabilities negotiation with 'qmp_capabilities'");
    /* Shape errors keep their own text even before negotiation, as in QEMU. */
    assert_error(qtest_qmp(s, "[]"), "GenericError", "QMP input must be a JSON object");
    assert_error(qtest_qmp(s, "{\"execute\": \"qmp_capabilities\", "
                              "\"arguments\": {\"enable\": [\"bogus\"]}}"),
                 "GenericError", "Parameter 'null' does not accept value 'bogus'");

    static const char neg[] = "{\"execute\": \"qmp_capabilities\", \"id\": 7, "
                              "\"arguments\": {\"enable\": [\"oob\"]}}";
    qtest_qmp_send_raw(s, neg, strlen(neg));
    g_autofree char *line = qtest_qmp_receive_line(s);
    g_assert_cmpstr(line, ==, "{\"return\": {}, \"id\": 7}");

    assert_error(qtest_qmp(s, "{\"execute\": \"qmp_capabilities\"}"), "CommandNotFound",
                 "Capabilities negotiation is already complete, command ignored");
    /* With oob negotiated, exec-oob is understood, but no command allows it. */
    assert_error(qtest_qmp(s, "{\"exec-oob\": \"query-status\"}"), "GenericError",
                 "The command query-status does not support OOB");
    assert_error(qtest_qmp(s, "{\"execute\": \"stop\", \"exec-oob\": \"stop\"}"),
                 "GenericError", "QMP input member 'execute' clashes with 'exec-oob'");
    assert_usable(s);
    qtest_quit(s);
}

typedef struct BadInput {
    const char *input;
    const char *cls;
    const char *desc;
} BadInput;

/* Texts verified against qemu-system-x86_64 7.2 with the same input. */
static const BadInput bad_inputs[] = {
    { "[1]", "GenericError", "QMP input must be a JSON object" },
    { "\"str\"", "GenericError", "QMP input must be a JSON object" },
    { "{\"id\": 1}", "GenericError", "QMP input lacks member 'execute'" },
    { "{\"execute\": 1}", "GenericError",
      "QMP input member 'execute' must be a string" },
    { "{\"execute\": \"query-status\", \"arguments\": []}", "GenericError",
      "QMP input member 'arguments' must be an object" },
    { "{\"execute\": \"query-status\", \"foo\": 1}", "GenericError",
      "QMP input member 'foo' is unexpected" },
    { "{\"exec-oob\": \"query-status\"}", "GenericError",
      "QMP input member 'exec-oob' is unexpected" },
    { "{\"execute\": \"foo\"}", "CommandNotFound",
      "The command foo has not been found" },
    { "}", "GenericError", "JSON parse error, expecting value" },
    { "{\"a\":1,}", "GenericError", "JSON parse error, expecting value" },
    { "{\"a\":tru}", "GenericError", "JSON parse error, invalid keyword 'tru'" },
    { "@ ", "GenericError", "JSON parse error, stray '@'" },
    { "{\"execute\" \"x\"}", "GenericError",
      "JSON parse error, missing : in object pair" },
    { "[1 2]", "GenericError", "JSON parse error, expected separator in list" },
    { "{1:2}", "GenericError", "JSON parse error, key is not a string in object" },
    { "{\"a\":1 \"b\":2}", "GenericError",
      "JSON parse error, expected separator in dict" },
    { "{\"a\":\"\\x\"}", "GenericError",
      "JSON parse error, invalid escape sequence in string" },
    { "{\"a\":\"\\ud800\"}", "GenericError",
      "JSON parse error, \\ud800 is not a valid Unicode character" },
    /* Arguments: missing, unexpected, wrong type. */
    { "{\"execute\": \"getfd\"}", "GenericError", "Parameter 'fdname' is missing" },
    { "{\"execute\": \"query-status\", \"arguments\": {\"a\": 1}}", "GenericError",
      "Parameter 'a' is unexpected" },
    { "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": 1}}", "GenericError",
      "Invalid parameter type for 'fdname', expected: string" },
    { "{\"execute\": \"dump-guest-memory\", \"arguments\": {\"paging\": \"yes\", "
      "\"protocol\": \"file:/nonexistent/x\"}}", "GenericError",
      "Invalid parameter type for 'paging', expected: boolean" },
};

static void test_bad_input(void)
{
    QTestState *s = qtest_init("-S");

    for (size_t i = 0; i < G_N_ELEMENTS(bad_inputs); i++) {
        const BadInput *b = &bad_inputs[i];
        if (g_test_verbose()) {
            g_test_message("input: %s", b->input);
        }
        qtest_qmp_send_raw(s, b->input, strlen(b->input));
        assert_error(qtest_qmp_receive(s), b->cls, b->desc);
        assert_usable(s);
    }
    qtest_quit(s);
}

static void test_huge_input(void)
{
    QTestState *s = qtest_init("-S");

    /* Several MiB in one value is legal and must simply work. */
    size_t n = 4 << 20;
    GString *req = g_string_new("{\"execute\": \"human-monitor-command\", "
                                "\"arguments\": {\"command-line\": \"");
    for (size_t i = 0; i < n; i++) {
        g_string_append_c(req, 'a');
    }
    g_string_append(req, "\"}}");
    qtest_qmp_send_raw(s, req->str, req->len);
    JsonObject *rsp = qtest_qmp_receive(s);
    const char *out = json_object_get_string_member(rsp, "return");
    g_assert_true(g_str_has_prefix(out, "unknown command: 'aaaa"));
    g_assert_cmpuint(strlen(out), ==, n + strlen("unknown command: ''\r\n"));
    json_object_unref(rsp);
    g_string_free(req, TRUE);

    /* Too deep: one error, the rest of the value is skipped, the session goes on. */
    GString *deep = g_string_new(NULL);
    for (int i = 0; i < 5000; i++) {
        g_string_append_c(deep, '[');
    }
    for (int i = 0; i < 5000; i++) {
        g_string_append_c(deep, ']');
    }
    qtest_qmp_send_raw(s, deep->str, deep->len);
    assert_error(qtest_qmp_receive(s), "GenericError",
                 "JSON nesting depth limit exceeded");
    g_string_free(deep, TRUE);
    assert_usable(s);

    /* Beyond 64 MiB in one value: refused without buffering it all. */
    size_t big = (64u << 20) + 4096;
    char *chunk = g_malloc(1 << 20);
    memset(chunk, 'b', 1 << 20);
    qtest_qmp_send_raw(s, "{\"execute\": \"x\", \"arguments\": {\"s\": \"", 38);
    for (size_t sent = 0; sent < big; sent += 1 << 20) {
        qtest_qmp_send_raw(s, chunk, 1 << 20);
    }
    qtest_qmp_send_raw(s, "\"}}", 3);
    g_free(chunk);
    assert_error(qtest_qmp_receive(s), "GenericError", "JSON token size limit exceeded");
    assert_usable(s);
    qtest_quit(s);
}

static void test_id_echo(void)
{
    QTestState *s = qtest_init("-S");
    static const struct {
        const char *id;
        const char *echoed;
    } ids[] = {
        { "1", "1" },
        { "\"abc\"", "\"abc\"" },
        { "null", "null" },
        { "[1, {\"a\": 2}]", "[1, {\"a\": 2}]" },
        { "18446744073709551615", "18446744073709551615" },
        { "-9223372036854775808", "-9223372036854775808" },
        { "0.1", "0.10000000000000001" },
        { "1e2", "100" },
        { "\"\\u00e9\\u0001/\"", "\"\\u00E9\\u0001/\"" },
        /* Members come out in QEMU's QDict order, not as sent. */
        { "{\"x\": 1, \"big\": 2, \"n\": 3, \"ea\": []}",
          "{\"ea\": [], \"n\": 3, \"x\": 1, \"big\": 2}" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        g_autofree char *req = g_strdup_printf("{\"execute\": \"query-status\", "
                                               "\"id\": %s}", ids[i].id);
        qtest_qmp_send_raw(s, req, strlen(req));
        g_autofree char *line = qtest_qmp_receive_line(s);
        g_autofree char *want = g_strdup_printf(
            "{\"return\": {\"status\": \"prelaunch\", \"singlestep\": false, "
            "\"running\": false}, \"id\": %s}", ids[i].echoed);
        g_assert_cmpstr(line, ==, want);
    }
    /* An error response carries the id too (before "error", as QEMU orders it). */
    qtest_qmp_send_raw(s, "{\"execute\": \"nope\", \"id\": \"q\"}", 31);
    g_autofree char *line = qtest_qmp_receive_line(s);
    g_assert_cmpstr(line, ==, "{\"id\": \"q\", \"error\": "
                    "{\"class\": \"CommandNotFound\", "
                    "\"desc\": \"The command nope has not been found\"}}");
    qtest_quit(s);
}

static GPtrArray *schema_names(JsonArray *schema, const char *meta)
{
    GPtrArray *names = g_ptr_array_new();
    for (guint i = 0; i < json_array_get_length(schema); i++) {
        JsonObject *o = json_array_get_object_element(schema, i);
        if (!strcmp(json_object_get_string_member(o, "meta-type"), meta)) {
            g_ptr_array_add(names, (gpointer)json_object_get_string_member(o, "name"));
        }
    }
    return names;
}

static JsonObject *schema_find(JsonArray *schema, const char *name)
{
    for (guint i = 0; i < json_array_get_length(schema); i++) {
        JsonObject *o = json_array_get_object_element(schema, i);
        if (!strcmp(json_object_get_string_member(o, "name"), name)) {
            return o;
        }
    }
    return NULL;
}

static void test_query_commands_and_schema(void)
{
    QTestState *s = qtest_init("-S");
    JsonNode *cmds = qtest_qmp_assert_success_ref(s,
                                                  "{\"execute\": \"query-commands\"}");
    JsonNode *schema_node = qtest_qmp_assert_success_ref(
        s, "{\"execute\": \"query-qmp-schema\"}");
    JsonArray *schema = json_node_get_array(schema_node);
    GPtrArray *schema_cmds = schema_names(schema, "command");
    JsonArray *list = json_node_get_array(cmds);

    /* Every command of the schema, and nothing else. */
    g_assert_cmpuint(json_array_get_length(list), ==, schema_cmds->len);
    for (guint i = 0; i < schema_cmds->len; i++) {
        bool found = false;
        for (guint j = 0; j < json_array_get_length(list); j++) {
            JsonObject *ci = json_array_get_object_element(list, j);
            if (!strcmp(json_object_get_string_member(ci, "name"),
                        g_ptr_array_index(schema_cmds, i))) {
                found = true;
            }
        }
        g_assert_true(found);
    }
    static const char *const expected[] = {
        "qmp_capabilities", "query-version", "query-commands", "query-qmp-schema",
        "getfd", "closefd", "add-fd", "remove-fd", "query-fdsets",
        "human-monitor-command", "quit", "stop", "cont", "query-status",
        "dump-guest-memory", "query-dump", "query-dump-guest-memory-capability",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        bool found = false;
        for (guint j = 0; j < schema_cmds->len; j++) {
            found |= !strcmp(g_ptr_array_index(schema_cmds, j), expected[i]);
        }
        if (!found) {
            g_error("command %s missing from the schema", expected[i]);
        }
    }

    /* dump-guest-memory's arguments as introspection describes them. */
    JsonObject *dgm = schema_find(schema, "dump-guest-memory");
    g_assert_nonnull(dgm);
    const char *arg_type = json_object_get_string_member(dgm, "arg-type");
    JsonObject *args = schema_find(schema, arg_type);
    g_assert_nonnull(args);
    JsonArray *members = json_object_get_array_member(args, "members");
    static const struct {
        const char *name;
        bool optional;
    } want[] = {
        { "paging", false }, { "protocol", false }, { "detach", true },
        { "begin", true }, { "length", true }, { "format", true },
        { "dump-level", true },     /* guestdump's extension */
    };
    g_assert_cmpuint(json_array_get_length(members), ==, G_N_ELEMENTS(want));
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        JsonObject *m = json_array_get_object_element(members, i);
        g_assert_cmpstr(json_object_get_string_member(m, "name"), ==, want[i].name);
        g_assert_cmpint(json_object_has_member(m, "default"), ==, want[i].optional);
    }
    JsonObject *paging = json_array_get_object_element(members, 0);
    g_assert_cmpstr(json_object_get_string_member(paging, "type"), ==, "bool");

    g_ptr_array_free(schema_cmds, TRUE);
    json_node_unref(schema_node);
    json_node_unref(cmds);
    qtest_quit(s);
}

static const char *status_of(QTestState *s)
{
    static char buf[64];
    JsonNode *r = qtest_qmp_assert_success_ref(s, "{\"execute\": \"query-status\"}");
    g_strlcpy(buf, json_object_get_string_member(json_node_get_object(r), "status"),
              sizeof(buf));
    json_node_unref(r);
    return buf;
}

static void test_runstate_and_events(void)
{
    QTestState *s = qtest_init("-S -m 32");
    QTestState *c2 = qtest_qmp_connect_extra(s);

    g_assert_cmpstr(status_of(s), ==, "prelaunch");
    /* stop on a guest that never ran changes nothing, as in QEMU. */
    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    g_assert_cmpstr(status_of(s), ==, "prelaunch");
    g_assert_null(qtest_qmp_event_poll(s, "STOP", 200));

    qtest_qmp_assert_success(s, "{\"execute\": \"cont\"}");
    g_assert_cmpstr(status_of(s), ==, "running");
    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    g_assert_cmpstr(status_of(s), ==, "paused");

    /* Both clients get both events. */
    for (int i = 0; i < 2; i++) {
        QTestState *c = i ? c2 : s;
        JsonObject *ev = qtest_qmp_event_wait(c, "RESUME");
        JsonObject *ts = json_object_get_object_member(ev, "timestamp");
        g_assert_cmpint(json_object_get_int_member(ts, "seconds"), >, 1600000000);
        g_assert_false(json_object_has_member(ev, "data"));
        json_object_unref(ev);
        ev = qtest_qmp_event_wait(c, "STOP");
        json_object_unref(ev);
    }
    qtest_quit(c2);
    qtest_quit(s);
}

static void test_quit(void)
{
    QTestState *s = qtest_init("-S");
    g_autofree char *path = g_strdup(qtest_qmp_socket_path(s));

    qtest_qmp_send_raw(s, "{\"execute\": \"quit\"}", 19);
    /* SHUTDOWN comes first, then the reply; then the host is gone. */
    g_autofree char *ev = qtest_qmp_receive_line(s);
    g_assert_true(g_str_has_prefix(ev, "{\"timestamp\": {\"seconds\": "));
    g_assert_true(g_str_has_suffix(ev, "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": "
                                   "false, \"reason\": \"host-qmp-quit\"}}"));
    g_autofree char *rsp = qtest_qmp_receive_line(s);
    g_assert_cmpstr(rsp, ==, "{\"return\": {}}");
    int status = qtest_wait_exit(s, 30000);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    qtest_quit(s);
}

static void test_sigterm(void)
{
    QTestState *s = qtest_init("-S");
    g_autofree char *path = g_strdup(qtest_qmp_socket_path(s));

    kill(qtest_pid(s), SIGTERM);
    JsonObject *ev = qtest_qmp_event_wait(s, "SHUTDOWN");
    JsonObject *data = json_object_get_object_member(ev, "data");
    g_assert_cmpstr(json_object_get_string_member(data, "reason"), ==, "host-signal");
    json_object_unref(ev);
    int status = qtest_wait_exit(s, 30000);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    qtest_quit(s);
}

static void test_chardev_mon(void)
{
    /* The libvirt way: a named chardev plus -mon in control mode. */
    QTestState *s = qtest_init(
        "-S -chardev socket,id=charmonitor,path=@TMP@/lv.sock,server=on,wait=off "
        "-mon chardev=charmonitor,id=monitor,mode=control");
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "lv.sock", NULL);
    int fd = raw_connect(path);
    g_autofree char *greeting = raw_line(fd);
    g_assert_cmpstr(greeting, ==, GREETING "\r\n");
    const char req[] = "{\"execute\":\"qmp_capabilities\"}"
                       "{\"execute\":\"query-status\"}";
    g_assert_cmpint(write(fd, req, strlen(req)), ==, strlen(req));
    g_autofree char *r1 = raw_line(fd);
    g_autofree char *r2 = raw_line(fd);
    g_assert_cmpstr(r1, ==, "{\"return\": {}}\r\n");
    g_assert_true(g_str_has_prefix(r2, "{\"return\": {\"status\": \"prelaunch\""));
    close(fd);
    qtest_quit(s);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static int free_tcp_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_tcp_and_old_spelling(void)
{
    int port = free_tcp_port();
    /* QEMU's older "server,nowait" spelling, and a TCP QMP socket on loopback. */
    g_autofree char *args = g_strdup_printf(
        "-S -qmp unix:@TMP@/old.sock,server,nowait "
        "-qmp tcp::%d,server=on,wait=off", port);
    QTestState *s = qtest_init(args);
    g_autofree char *old = g_build_filename(qtest_tmpdir(s), "old.sock", NULL);
    int fd = raw_connect(old);
    g_autofree char *g1 = raw_line(fd);
    g_assert_cmpstr(g1, ==, GREETING "\r\n");
    close(fd);

    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_autofree char *g2 = raw_line(fd);
    g_assert_cmpstr(g2, ==, GREETING "\r\n");
    const char req[] = "{\"execute\": \"qmp_capabilities\"}";
    g_assert_cmpint(write(fd, req, strlen(req)), ==, strlen(req));
    g_autofree char *r = raw_line(fd);
    g_assert_cmpstr(r, ==, "{\"return\": {}}\r\n");
    /* No SCM_RIGHTS over TCP: getfd fails as in QEMU. */
    const char getfd[] = "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"x\"}}";
    g_assert_cmpint(write(fd, getfd, strlen(getfd)), ==, strlen(getfd));
    g_autofree char *e = raw_line(fd);
    g_assert_true(strstr(e, "No file descriptor supplied via SCM_RIGHTS") != NULL);
    close(fd);
    qtest_quit(s);
}

/* Where our QMP transports differ from 7.2 (docs/compat.md, "QMP and HMP monitor"). */
static void test_transport_deviations(void)
{
    int port = free_tcp_port();
    g_autofree char *args = g_strdup_printf(
        "-S -qmp tcp::%d,server=on,wait=off "
        "-chardev socket,id=p,path=@TMP@/pretty.sock,server=on,wait=off "
        "-mon chardev=p,mode=control,pretty=on", port);
    QTestState *s = qtest_init(args);

    /* An empty host listens on loopback only. */
    g_autofree char *net = g_strdup_printf("/proc/%d/net/tcp", (int)qtest_pid(s));
    g_autofree char *tcp = NULL;
    g_autofree char *loopback = g_strdup_printf(" 0100007F:%04X 00000000:0000 0A ",
                                                port);
    g_autofree char *any = g_strdup_printf(" 00000000:%04X 00000000:0000 0A ", port);
    g_assert_true(g_file_get_contents(net, &tcp, NULL, NULL));
    g_assert_nonnull(strstr(tcp, loopback));
    g_assert_null(strstr(tcp, any));

    /* pretty=on is accepted; replies stay one line each. */
    g_autofree char *pretty = g_build_filename(qtest_tmpdir(s), "pretty.sock", NULL);
    int nfds = qtest_count_fds(s);
    int fd = raw_connect(pretty);
    g_autofree char *greeting = raw_line(fd);
    g_assert_cmpstr(greeting, ==, GREETING "\r\n");
    const char req[] = "{\"execute\": \"qmp_capabilities\"}";
    g_assert_cmpint(write(fd, req, strlen(req)), ==, strlen(req));
    g_autofree char *r = raw_line(fd);
    g_assert_cmpstr(r, ==, "{\"return\": {}}\r\n");
    close(fd);
    /* That client must be gone before counting up to the limit. */
    for (int i = 0; i < 500 && qtest_count_fds(s) != nfds; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_count_fds(s), ==, nfds);

    /* One socket serves several clients at once, 64 at the most. */
    int extra[64];
    for (int i = 0; i < 63; i++) {
        extra[i] = raw_connect(qtest_qmp_socket_path(s));
        g_autofree char *g = raw_line(extra[i]);
        g_assert_cmpstr(g, ==, GREETING "\r\n");
    }
    /*
     * All 64 taken, 63 of them never negotiated: a newcomer still gets in,
     * in place of the oldest of those (a management client is never locked
     * out by idle connections).
     */
    extra[63] = raw_connect(qtest_qmp_socket_path(s));
    {
        g_autofree char *g = raw_line(extra[63]);
        g_autofree char *gone = raw_line(extra[0]);
        g_assert_cmpstr(g, ==, GREETING "\r\n");
        g_assert_cmpstr(gone, ==, "");
    }
    close(extra[0]);
    /* once all have negotiated, the 65th is refused */
    for (int i = 1; i < 64; i++) {
        g_assert_cmpint(write(extra[i], req, strlen(req)), ==, strlen(req));
        g_autofree char *ok = raw_line(extra[i]);
        g_assert_cmpstr(ok, ==, "{\"return\": {}}\r\n");
    }
    int refused = raw_connect(qtest_qmp_socket_path(s));
    g_autofree char *none = raw_line(refused);
    g_assert_cmpstr(none, ==, "");
    close(refused);
    assert_usable(s);
    for (int i = 1; i < 64; i++) {
        close(extra[i]);
    }
    qtest_quit(s);
}

static void test_client_mode(void)
{
    /* server=off: the host connects to us, as QEMU's own libqtest arranges it. */
    g_autofree char *dir = g_dir_make_tmp("gd-client-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "listen.sock", NULL);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);

    g_autofree char *spec = g_strdup_printf("unix:%s", path);
    const char *argv[] = { GUESTDUMP_BINARY, "-S", "-m", "32", "-qmp", spec, NULL };
    GPid pid;
    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                NULL, NULL, &pid, NULL));
    int fd = accept(lfd, NULL, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_autofree char *greeting = raw_line(fd);
    g_assert_cmpstr(greeting, ==, GREETING "\r\n");
    const char req[] = "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"quit\"}";
    g_assert_cmpint(write(fd, req, strlen(req)), ==, strlen(req));
    g_autofree char *r = raw_line(fd);
    g_assert_cmpstr(r, ==, "{\"return\": {}}\r\n");
    int status;
    waitpid(pid, &status, 0);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Not ours to remove: the listener belongs to the client. */
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    close(fd);
    close(lfd);
    unlink(path);
    rmdir(dir);
}

/* Sends len bytes of 'a' (an unfinished JSON string) to fd. */
static void send_filler(int fd, size_t len)
{
    static char chunk[65536];

    memset(chunk, 'a', sizeof(chunk));
    for (size_t sent = 0; sent < len;) {
        ssize_t n = write(fd, chunk, MIN(sizeof(chunk), len - sent));

        g_assert_cmpint(n, >, 0);
        sent += n;
    }
}

static int negotiated_client(const char *path)
{
    static const char req[] = "{\"execute\": \"qmp_capabilities\"}";
    int fd = raw_connect(path);
    g_autofree char *g = raw_line(fd);
    g_autofree char *r = NULL;

    g_assert_cmpstr(g, ==, GREETING "\r\n");
    g_assert_cmpint(write(fd, req, strlen(req)), ==, strlen(req));
    r = raw_line(fd);
    g_assert_cmpstr(r, ==, "{\"return\": {}}\r\n");
    return fd;
}

/* In the host's child: stderr to a file; killed if the test dies first. */
static void stderr_to_file(gpointer path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
}

static guint count_drops(const char *log)
{
    g_autofree char *text = NULL;
    guint n = 0;

    g_file_get_contents(log, &text, NULL, NULL);
    for (const char *p = text; p && (p = strstr(p, "dropping a client that holds"));
         p++) {
        n++;
    }
    return n;
}

/*
 * The host-wide budget for buffered monitor input and output (10 MiB here,
 * through GUESTDUMP_MONITOR_BUDGET): beyond it the client holding most is
 * dropped with a line on stderr, and the others go on.
 */
static void test_host_budget(void)
{
    g_autofree char *dir = g_dir_make_tmp("gd-budget-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *log = g_build_filename(dir, "stderr", NULL);
    g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    const char *argv[] = { GUESTDUMP_BINARY, "-S", "-m", "32", "-qmp", spec, NULL };
    g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "GUESTDUMP_MONITOR_BUDGET",
                                         "10485760", TRUE);
    static const char head[] = "{\"execute\": \"x\", \"arguments\": {\"s\": \"";
    static const char schema[] = "{\"execute\": \"query-qmp-schema\"}";
    int a, b, c, status;
    GPid pid;
    g_autofree char *gone = NULL, *answer = NULL;

    g_assert_true(g_spawn_async(NULL, (char **)argv, env, G_SPAWN_DO_NOT_REAP_CHILD,
                                stderr_to_file, log, &pid, NULL));
    for (int i = 0; i < 500 && !g_file_test(sock, G_FILE_TEST_EXISTS); i++) {
        g_usleep(10 * 1000);
    }
    signal(SIGPIPE, SIG_IGN);
    a = negotiated_client(sock);
    b = negotiated_client(sock);
    c = negotiated_client(sock);
    {
        /* a host without the budget never drops a: fail, do not hang */
        struct timeval tv = { .tv_sec = 30 };
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }

    /* input: 6 MiB unfinished (8 MiB held) and 2.5 MiB (4 MiB held) */
    g_assert_cmpint(write(a, head, strlen(head)), ==, strlen(head));
    send_filler(a, 6 << 20);
    g_assert_cmpint(write(b, head, strlen(head)), ==, strlen(head));
    send_filler(b, 5 << 19);
    gone = raw_line(a);
    g_assert_cmpstr(gone, ==, "");
    close(a);
    g_assert_cmpuint(count_drops(log), ==, 1);
    /* b finishes its request and is answered */
    g_assert_cmpint(write(b, "\"}}", 3), ==, 3);
    answer = raw_line(b);
    g_assert_nonnull(strstr(answer, "The command x has not been found"));

    /* output: c asks for the schema again and again and never reads */
    for (int i = 0; i < 2000 && count_drops(log) < 2; i++) {
        if (write(c, schema, strlen(schema)) != (ssize_t)strlen(schema)) {
            break;
        }
        if (i % 50 == 49) {
            g_usleep(20 * 1000);
        }
    }
    for (int i = 0; i < 500 && count_drops(log) < 2; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpuint(count_drops(log), ==, 2);
    close(c);
    g_free(answer);
    g_assert_cmpint(write(b, schema, strlen(schema)), ==, strlen(schema));
    answer = raw_line(b);
    g_assert_true(g_str_has_prefix(answer, "{\"return\": ["));

    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    g_spawn_close_pid(pid);
    close(b);
    unlink(log);
    unlink(sock);
    rmdir(dir);
}

static void run_host(const char *const *args, int *status, char **out, char **err);

static void test_daemonize_pidfile(void)
{
    g_autofree char *dir = g_dir_make_tmp("gd-daemon-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *pidfile = g_build_filename(dir, "pid", NULL);
    g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    const char *argv[] = { GUESTDUMP_BINARY, "-S", "-m", "32", "-daemonize",
                           "-pidfile", pidfile, "-qmp", spec, NULL };
    int status;

    /* The command returns once the socket listens; the host lives on. */
    run_host(argv, &status, NULL, NULL);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(pidfile, &text, NULL, NULL));
    pid_t pid = atoi(text);
    g_assert_cmpint(pid, >, 0);
    g_assert_cmpint(kill(pid, 0), ==, 0);

    int fd = raw_connect(sock);
    g_autofree char *greeting = raw_line(fd);
    g_assert_cmpstr(greeting, ==, GREETING "\r\n");
    const char req[] = "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"quit\"}";
    g_assert_cmpint(write(fd, req, strlen(req)), ==, strlen(req));
    g_autofree char *r = raw_line(fd);
    g_assert_cmpstr(r, ==, "{\"return\": {}}\r\n");
    /* Not our child: wait for it to go by watching its pid. */
    for (int i = 0; i < 3000 && kill(pid, 0) == 0; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(kill(pid, 0), ==, -1);
    g_assert_false(g_file_test(pidfile, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));
    close(fd);
    rmdir(dir);
}

static void test_stdio(void)
{
    const char *argv[] = { GUESTDUMP_BINARY, "-S", "-qmp", "stdio", NULL };
    const char input[] = "{\"execute\": \"qmp_capabilities\"}\n"
                         "{\"execute\": \"query-version\"}\n{\"execute\": \"quit\"}\n";
    g_autofree char *out = NULL;
    int status;
    GError *err = NULL;
    GPid pid;
    int in_fd, out_fd;

    g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                           &in_fd, &out_fd, NULL, &err));
    g_assert_cmpint(write(in_fd, input, strlen(input)), ==, strlen(input));
    GString *all = g_string_new(NULL);
    char buf[4096];
    ssize_t n;
    while ((n = read(out_fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(all, buf, n);
    }
    waitpid(pid, &status, 0);
    close(in_fd);
    close(out_fd);
    out = g_string_free(all, FALSE);
    g_assert_true(g_str_has_prefix(out, GREETING "\r\n{\"return\": {}}\r\n"
                                   "{\"return\": {\"qemu\": {\"micro\": 0, "
                                   "\"minor\": 2, \"major\": 7}, "
                                   "\"package\": \"guestdump "));
    g_assert_true(g_str_has_suffix(out, "\"reason\": \"host-qmp-quit\"}}\r\n"
                                   "{\"return\": {}}\r\n"));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void run_host(const char *const *args, int *status, char **out, char **err)
{
    GError *gerr = NULL;
    g_assert_true(g_spawn_sync(NULL, (char **)args, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               out, err, status, &gerr));
    g_assert_no_error(gerr);
}

static void test_command_line(void)
{
    int status;
    g_autofree char *out = NULL, *err = NULL;
    const char *version[] = { GUESTDUMP_BINARY, "-version", NULL };
    run_host(version, &status, &out, &err);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_assert_true(g_str_has_prefix(out, "QEMU emulator version 7.2.0 (guestdump "
                                   GUESTDUMP_VERSION ")\n"));

    g_free(out);
    g_free(err);
    const char *help[] = { GUESTDUMP_BINARY, "-h", NULL };
    run_host(help, &status, &out, &err);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_assert_nonnull(strstr(out, "-qmp DEV"));

    g_free(out);
    g_free(err);
    const char *bad[] = { GUESTDUMP_BINARY, "-bogus", NULL };
    run_host(bad, &status, &out, &err);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    g_assert_cmpstr(err, ==, "guestdump: -bogus: invalid option\n");

    g_free(out);
    g_free(err);
    const char *two_stdio[] = { GUESTDUMP_BINARY, "-S", "-qmp", "stdio",
                                "-monitor", "stdio", NULL };
    run_host(two_stdio, &status, &out, &err);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    g_assert_cmpstr(err, ==,
                    "guestdump: cannot use stdio by multiple character devices\n");

    g_free(out);
    g_free(err);
    const char *client[] = { GUESTDUMP_BINARY, "-S", "-qmp",
                             "unix:/nonexistent/x.sock", NULL };
    run_host(client, &status, &out, &err);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    g_assert_cmpstr(err, ==, "guestdump: Failed to connect to '/nonexistent/x.sock': "
                    "No such file or directory\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/greeting", test_greeting);
    g_test_add_func("/qmp/negotiation", test_negotiation);
    g_test_add_func("/qmp/bad-input", test_bad_input);
    g_test_add_func("/qmp/huge-input", test_huge_input);
    g_test_add_func("/qmp/id-echo", test_id_echo);
    g_test_add_func("/qmp/query-commands-and-schema", test_query_commands_and_schema);
    g_test_add_func("/qmp/runstate-and-events", test_runstate_and_events);
    g_test_add_func("/qmp/quit", test_quit);
    g_test_add_func("/qmp/sigterm", test_sigterm);
    g_test_add_func("/qmp/chardev-mon", test_chardev_mon);
    g_test_add_func("/qmp/stdio", test_stdio);
    g_test_add_func("/qmp/tcp-and-old-spelling", test_tcp_and_old_spelling);
    g_test_add_func("/qmp/command-line", test_command_line);
    g_test_add_func("/qmp/transport-deviations", test_transport_deviations);
    g_test_add_func("/qmp/host-budget", test_host_budget);
    g_test_add_func("/qmp/client-mode", test_client_mode);
    g_test_add_func("/qmp/daemonize-pidfile", test_daemonize_pidfile);
    return g_test_run();
}
