/* libqtest: start the guestdump host and talk QMP, HMP and the qtest protocol to it. */
#include "libqtest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#ifndef GUESTDUMP_BINARY
#error "GUESTDUMP_BINARY must name the host binary (see tests/qtest/meson.build)"
#endif

/* Generous: the machine is shared by several builds and test runs. */
#define QTEST_IO_TIMEOUT_MS (120 * 1000)
#define QTEST_START_TIMEOUT_MS (30 * 1000)

struct QTestState {
    pid_t pid;                 /* -1 for an extra client */
    bool owner;                /* started the host, so quit/kill/rmdir are ours */
    bool exited;
    int exit_status;
    char *tmpdir;
    char *qmp_path;
    char *hmp_path;
    int qmp_fd;
    GString *inbuf;            /* QMP bytes not yet split into lines */
    GQueue events;             /* JsonObject, arrived while waiting for a response */
    JsonObject *greeting;

    /* qtest protocol transport */
    int qtest_listen_fd;
    int qtest_fd;
    GString *qtest_inbuf;
};

/* ---------------------------------------------------------------------- */
/* Small helpers                                                            */
/* ---------------------------------------------------------------------- */

char *qtest_json_str(const char *s)
{
    JsonNode *n = json_node_new(JSON_NODE_VALUE);
    json_node_set_string(n, s);
    char *out = json_to_string(n, FALSE);
    json_node_unref(n);
    return out;
}

const char *qtest_error_class(JsonObject *rsp)
{
    if (!rsp || !json_object_has_member(rsp, "error")) {
        return NULL;
    }
    return json_object_get_string_member(json_object_get_object_member(rsp, "error"),
                                         "class");
}

const char *qtest_error_desc(JsonObject *rsp)
{
    if (!rsp || !json_object_has_member(rsp, "error")) {
        return NULL;
    }
    return json_object_get_string_member(json_object_get_object_member(rsp, "error"),
                                         "desc");
}

static bool reap(QTestState *s, int flags)
{
    if (s->exited || s->pid <= 0) {
        return true;
    }
    int status;
    pid_t r;
    do {
        r = waitpid(s->pid, &status, flags);
    } while (r < 0 && errno == EINTR);
    if (r == s->pid) {
        s->exited = true;
        s->exit_status = status;
        return true;
    }
    return false;
}

/* Reads more bytes from fd into buf; aborts on timeout, false on EOF. */
static bool read_more(QTestState *s, int fd, GString *buf, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int r;

    do {
        r = poll(&pfd, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return false;
    }
    char tmp[65536];
    ssize_t n;
    do {
        n = read(fd, tmp, sizeof(tmp));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        return false;
    }
    g_string_append_len(buf, tmp, n);
    return true;
}

static char *take_line(GString *buf)
{
    char *nl = memchr(buf->str, '\n', buf->len);
    if (!nl) {
        return NULL;
    }
    size_t len = nl - buf->str;
    char *line = g_strndup(buf->str, len);
    g_string_erase(buf, 0, len + 1);
    return line;
}

static bool write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK) {
            n = write(fd, buf, len);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    g_assert(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---------------------------------------------------------------------- */
/* QMP                                                                      */
/* ---------------------------------------------------------------------- */

char *qtest_qmp_receive_line(QTestState *s)
{
    char *line;
    while (!(line = take_line(s->inbuf))) {
        if (!read_more(s, s->qmp_fd, s->inbuf, QTEST_IO_TIMEOUT_MS)) {
            g_error("libqtest: QMP connection closed or timed out (host pid %d)",
                    (int)s->pid);
        }
    }
    /* Every QMP line ends in CR LF; the line itself excludes both. */
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r') {
        line[len - 1] = '\0';
    }
    return line;
}

static JsonObject *parse_object(const char *line)
{
    g_autoptr(JsonParser) p = json_parser_new();
    GError *gerr = NULL;

    if (!json_parser_load_from_data(p, line, -1, &gerr)) {
        g_error("libqtest: bad JSON from host: %s: %s", gerr->message, line);
    }
    JsonNode *root = json_parser_get_root(p);
    g_assert(JSON_NODE_HOLDS_OBJECT(root));
    return json_object_ref(json_node_get_object(root));
}

/* The next message, event or not. */
static JsonObject *receive_any(QTestState *s)
{
    g_autofree char *line = qtest_qmp_receive_line(s);
    return parse_object(line);
}

JsonObject *qtest_qmp_receive(QTestState *s)
{
    for (;;) {
        JsonObject *o = receive_any(s);
        if (json_object_has_member(o, "event")) {
            g_queue_push_tail(&s->events, o);
            continue;
        }
        return o;
    }
}

void qtest_qmp_send_raw(QTestState *s, const char *buf, size_t len)
{
    if (!write_all(s->qmp_fd, buf, len)) {
        g_error("libqtest: cannot send to QMP: %s", g_strerror(errno));
    }
}

static void send_with_fds(QTestState *s, const char *msg, const int *fds, size_t nfds)
{
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = strlen(msg) };
    size_t cmsg_space = CMSG_SPACE(sizeof(int) * nfds);
    g_autofree char *control = g_malloc0(cmsg_space);
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control, .msg_controllen = cmsg_space,
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);

    ssize_t n;
    do {
        n = sendmsg(s->qmp_fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    g_assert_cmpint(n, >, 0);
    /* The fds travel with the first byte; the rest may follow separately. */
    if ((size_t)n < iov.iov_len) {
        qtest_qmp_send_raw(s, msg + n, iov.iov_len - n);
    }
}

static JsonObject *qmp_vsend(QTestState *s, const int *fds, size_t nfds,
                             const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);

    if (nfds) {
        send_with_fds(s, msg, fds, nfds);
    } else {
        qtest_qmp_send_raw(s, msg, strlen(msg));
    }
    return qtest_qmp_receive(s);
}

JsonObject *qtest_qmp(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    JsonObject *r = qmp_vsend(s, NULL, 0, fmt, ap);
    va_end(ap);
    return r;
}

JsonObject *qtest_qmp_fds(QTestState *s, const int *fds, size_t nfds,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    JsonObject *r = qmp_vsend(s, fds, nfds, fmt, ap);
    va_end(ap);
    return r;
}

static JsonNode *assert_success(JsonObject *rsp, const char *what)
{
    if (!json_object_has_member(rsp, "return")) {
        g_error("libqtest: %s failed: %s: %s", what,
                qtest_error_class(rsp) ? qtest_error_class(rsp) : "?",
                qtest_error_desc(rsp) ? qtest_error_desc(rsp) : "no return");
    }
    return json_node_ref(json_object_get_member(rsp, "return"));
}

JsonNode *qtest_qmp_assert_success_ref(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    JsonObject *rsp = qtest_qmp(s, "%s", msg);
    JsonNode *ret = assert_success(rsp, msg);
    json_object_unref(rsp);
    return ret;
}

void qtest_qmp_assert_success(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    JsonObject *rsp = qtest_qmp(s, "%s", msg);
    json_node_unref(assert_success(rsp, msg));
    json_object_unref(rsp);
}

static JsonObject *take_queued_event(QTestState *s, const char *event)
{
    for (GList *l = s->events.head; l; l = l->next) {
        JsonObject *o = l->data;
        if (!strcmp(json_object_get_string_member(o, "event"), event)) {
            g_queue_delete_link(&s->events, l);
            return o;
        }
    }
    return NULL;
}

JsonObject *qtest_qmp_event_poll(QTestState *s, const char *event, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (;;) {
        JsonObject *o = take_queued_event(s, event);
        if (o) {
            return o;
        }
        char *line;
        while (!(line = take_line(s->inbuf))) {
            gint64 left = (deadline - g_get_monotonic_time()) / 1000;
            if (left <= 0 || !read_more(s, s->qmp_fd, s->inbuf, (int)left)) {
                return NULL;
            }
        }
        o = parse_object(line);
        g_free(line);
        if (!json_object_has_member(o, "event")) {
            g_error("libqtest: unexpected response while waiting for %s", event);
        }
        g_queue_push_tail(&s->events, o);
    }
}

JsonObject *qtest_qmp_event_wait(QTestState *s, const char *event)
{
    JsonObject *o = qtest_qmp_event_poll(s, event, QTEST_IO_TIMEOUT_MS);
    if (!o) {
        g_error("libqtest: event %s did not arrive", event);
    }
    return o;
}

JsonObject *qtest_greeting(QTestState *s)
{
    return s->greeting;
}

static void qmp_handshake(QTestState *s, bool negotiate)
{
    s->greeting = receive_any(s);
    g_assert(json_object_has_member(s->greeting, "QMP"));
    if (negotiate) {
        qtest_qmp_assert_success(s, "{\"execute\": \"qmp_capabilities\"}");
    }
}

void qtest_qmp_disconnect(QTestState *s)
{
    if (s->qmp_fd >= 0) {
        close(s->qmp_fd);
        s->qmp_fd = -1;
    }
    g_string_truncate(s->inbuf, 0);
}

void qtest_qmp_reconnect(QTestState *s)
{
    qtest_qmp_disconnect(s);
    s->qmp_fd = unix_connect(s->qmp_path);
    g_assert(s->qmp_fd >= 0);
    if (s->greeting) {
        json_object_unref(s->greeting);
    }
    qmp_handshake(s, true);
}

QTestState *qtest_qmp_connect_extra(QTestState *s)
{
    QTestState *c = g_new0(QTestState, 1);

    c->pid = s->pid;
    c->owner = false;
    c->qtest_fd = c->qtest_listen_fd = -1;
    c->qmp_path = g_strdup(s->qmp_path);
    c->qmp_fd = unix_connect(s->qmp_path);
    g_assert(c->qmp_fd >= 0);
    c->inbuf = g_string_new(NULL);
    g_queue_init(&c->events);
    qmp_handshake(c, true);
    return c;
}

char *qtest_hmp(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *q = qtest_json_str(line);
    JsonNode *ret = qtest_qmp_assert_success_ref(
        s, "{\"execute\": \"human-monitor-command\", "
           "\"arguments\": {\"command-line\": %s}}", q);
    char *out = g_strdup(json_node_get_string(ret));
    json_node_unref(ret);
    return out;
}

/* ---------------------------------------------------------------------- */
/* HMP socket                                                               */
/* ---------------------------------------------------------------------- */

int qtest_hmp_connect(QTestState *s)
{
    g_assert(s->hmp_path);
    int fd = unix_connect(s->hmp_path);
    g_assert(fd >= 0);
    return fd;
}

char *qtest_hmp_read_until_prompt(int fd)
{
    GString *buf = g_string_new(NULL);
    static const char prompt[] = "(qemu) ";

    /* Byte by byte: what follows this prompt belongs to the next call. */
    while (!g_str_has_suffix(buf->str, prompt)) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char c;
        if (poll(&pfd, 1, QTEST_IO_TIMEOUT_MS) <= 0 || read(fd, &c, 1) != 1) {
            g_error("libqtest: HMP closed or timed out; got so far: %s", buf->str);
        }
        g_string_append_c(buf, c);
    }
    g_string_truncate(buf, buf->len - strlen(prompt));
    return g_string_free(buf, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Starting and stopping the host                                           */
/* ---------------------------------------------------------------------- */

/*
 * A test that aborts must not leave its host running (and holding meson's
 * pipes). The test may die before the child gets here, so the child also
 * checks it still has its parent.
 */
static void child_setup(gpointer opaque)
{
    pid_t test_pid = GPOINTER_TO_INT(opaque);

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != test_pid) {
        _exit(127);
    }
}

static int qtest_listen(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    g_assert(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0);
    g_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    g_assert(listen(fd, 1) == 0);
    return fd;
}

QTestState *qtest_init_full(const char *extra_args, unsigned flags)
{
    QTestState *s = g_new0(QTestState, 1);
    GError *gerr = NULL;

    s->owner = true;
    s->qtest_fd = s->qtest_listen_fd = -1;
    s->inbuf = g_string_new(NULL);
    s->qtest_inbuf = g_string_new(NULL);
    g_queue_init(&s->events);
    s->tmpdir = g_dir_make_tmp("guestdump-qtest-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    s->qmp_path = g_build_filename(s->tmpdir, "qmp.sock", NULL);

    GString *cmd = g_string_new(NULL);
    g_string_append_printf(cmd, "-qmp unix:%s,server=on,wait=off", s->qmp_path);
    if (flags & QTEST_WITH_HMP) {
        s->hmp_path = g_build_filename(s->tmpdir, "hmp.sock", NULL);
        g_string_append_printf(cmd, " -monitor unix:%s,server=on,wait=off", s->hmp_path);
    }
    if (flags & QTEST_WITH_QTEST) {
        g_autofree char *qpath = g_build_filename(s->tmpdir, "qtest.sock", NULL);
        s->qtest_listen_fd = qtest_listen(qpath);
        g_string_append_printf(cmd, " -qtest unix:%s", qpath);
    }
    if (extra_args) {
        g_autofree char *ex = g_strdup(extra_args);
        GString *e = g_string_new(ex);
        g_string_replace(e, "@TMP@", s->tmpdir, 0);
        g_string_append_printf(cmd, " %s", e->str);
        g_string_free(e, TRUE);
    }

    int argc;
    char **args;
    if (!g_shell_parse_argv(cmd->str, &argc, &args, &gerr)) {
        g_error("libqtest: bad extra_args '%s': %s", extra_args, gerr->message);
    }
    g_string_free(cmd, TRUE);
    GPtrArray *argv = g_ptr_array_new();
    /* QTEST_WRAPPER="valgrind --error-exitcode=9" runs the host under a tool. */
    g_auto(GStrv) wrapper = NULL;
    const char *wrap = g_getenv("QTEST_WRAPPER");
    if (wrap && *wrap && !g_shell_parse_argv(wrap, NULL, &wrapper, &gerr)) {
        g_error("libqtest: bad QTEST_WRAPPER: %s", gerr->message);
    }
    for (char **w = wrapper; w && *w; w++) {
        g_ptr_array_add(argv, *w);
    }
    g_ptr_array_add(argv, (char *)GUESTDUMP_BINARY);
    for (int i = 0; i < argc; i++) {
        g_ptr_array_add(argv, args[i]);
    }
    g_ptr_array_add(argv, NULL);
    if (g_getenv("QTEST_LOG")) {
        g_autofree char *joined = g_strjoinv(" ", (char **)argv->pdata);
        g_printerr("libqtest: %s\n", joined);
    }
    if (!g_spawn_async(NULL, (char **)argv->pdata, NULL,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL |
                       G_SPAWN_SEARCH_PATH,
                       child_setup, GINT_TO_POINTER(getpid()), &s->pid, &gerr)) {
        g_error("libqtest: cannot start %s: %s", GUESTDUMP_BINARY, gerr->message);
    }
    g_ptr_array_free(argv, TRUE);
    g_strfreev(args);

    if (s->qtest_listen_fd >= 0) {
        struct pollfd pfd = { .fd = s->qtest_listen_fd, .events = POLLIN };
        gint64 deadline = g_get_monotonic_time() + QTEST_START_TIMEOUT_MS * 1000ll;
        while (poll(&pfd, 1, 100) <= 0) {
            if (reap(s, WNOHANG) || g_get_monotonic_time() > deadline) {
                g_error("libqtest: host did not connect to the qtest socket");
            }
        }
        s->qtest_fd = accept4(s->qtest_listen_fd, NULL, NULL, SOCK_CLOEXEC);
        g_assert(s->qtest_fd >= 0);
    }

    /* The QMP socket appears once the machine is built. */
    gint64 deadline = g_get_monotonic_time() + QTEST_START_TIMEOUT_MS * 1000ll;
    for (;;) {
        s->qmp_fd = unix_connect(s->qmp_path);
        if (s->qmp_fd >= 0) {
            break;
        }
        if (reap(s, WNOHANG)) {
            g_error("libqtest: host exited during startup (status %d)", s->exit_status);
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("libqtest: QMP socket %s did not appear", s->qmp_path);
        }
        g_usleep(10 * 1000);
    }
    qmp_handshake(s, !(flags & QTEST_NO_NEGOTIATE));
    return s;
}

QTestState *qtest_init(const char *extra_args)
{
    return qtest_init_full(extra_args, 0);
}

QTestState *qtest_init_with_qtest(const char *extra_args)
{
    return qtest_init_full(extra_args, QTEST_WITH_QTEST);
}

int qtest_wait_exit(QTestState *s, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    while (!reap(s, WNOHANG)) {
        if (g_get_monotonic_time() > deadline) {
            return -1;
        }
        g_usleep(5 * 1000);
    }
    return s->exit_status;
}

void qtest_kill(QTestState *s)
{
    if (s->owner && !s->exited && s->pid > 0) {
        kill(s->pid, SIGKILL);
        reap(s, 0);
    }
}

pid_t qtest_pid(QTestState *s)
{
    return s->pid;
}

const char *qtest_tmpdir(QTestState *s)
{
    return s->tmpdir;
}

const char *qtest_qmp_socket_path(QTestState *s)
{
    return s->qmp_path;
}

int qtest_count_fds(QTestState *s)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/fd", (int)s->pid);
    GDir *d = g_dir_open(path, 0, NULL);
    int n = 0;

    if (!d) {
        return -1;
    }
    while (g_dir_read_name(d)) {
        n++;
    }
    g_dir_close(d);
    return n;
}

static void remove_tree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (!d) {
        return;
    }
    while ((name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            remove_tree(p);
        } else {
            g_unlink(p);
        }
    }
    g_dir_close(d);
    g_rmdir(dir);
}

void qtest_quit(QTestState *s)
{
    if (!s) {
        return;
    }
    if (s->owner && !s->exited) {
        if (s->qmp_fd < 0) {
            s->qmp_fd = unix_connect(s->qmp_path);
        }
        /* Negotiating first is harmless if done already, needed if not. */
        static const char quit[] = "{\"execute\": \"qmp_capabilities\"}"
                                   "{\"execute\": \"quit\"}";
        /* The host may already be gone (a test killed it); that is fine. */
        if (s->qmp_fd >= 0 && write_all(s->qmp_fd, quit, strlen(quit))) {
            qtest_wait_exit(s, 30 * 1000);
        }
        if (!s->exited) {
            qtest_kill(s);
        }
    }
    if (s->qmp_fd >= 0) {
        close(s->qmp_fd);
    }
    if (s->qtest_fd >= 0) {
        close(s->qtest_fd);
    }
    if (s->qtest_listen_fd >= 0) {
        close(s->qtest_listen_fd);
    }
    if (s->owner && s->tmpdir) {
        remove_tree(s->tmpdir);
    }
    JsonObject *o;
    while ((o = g_queue_pop_head(&s->events))) {
        json_object_unref(o);
    }
    if (s->greeting) {
        json_object_unref(s->greeting);
    }
    g_string_free(s->inbuf, TRUE);
    if (s->qtest_inbuf) {
        g_string_free(s->qtest_inbuf, TRUE);
    }
    g_free(s->tmpdir);
    g_free(s->qmp_path);
    g_free(s->hmp_path);
    g_free(s);
}

/* ---------------------------------------------------------------------- */
/* qtest protocol (owned by the machine engineer; add the client side here) */
/* ---------------------------------------------------------------------- */

int qtest_qtest_fd(QTestState *s)
{
    return s->qtest_fd;
}

void qtest_sendf(QTestState *s, const char *fmt, ...)
{
    g_assert(s->qtest_fd >= 0);
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!write_all(s->qtest_fd, msg, strlen(msg))) {
        g_error("libqtest: cannot send to qtest: %s", g_strerror(errno));
    }
}

char *qtest_recv_line(QTestState *s)
{
    char *line;
    g_assert(s->qtest_fd >= 0);
    while (!(line = take_line(s->qtest_inbuf))) {
        if (!read_more(s, s->qtest_fd, s->qtest_inbuf, QTEST_IO_TIMEOUT_MS)) {
            g_error("libqtest: qtest connection closed or timed out");
        }
    }
    return line;
}

/* qtest protocol client (machine engineer) */

char *qtest_command(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *line = NULL;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qtest_sendf(s, "%s\n", line);
    return qtest_recv_line(s);
}

/* The reply after "OK" (and a space), or abort with the command and reply. */
static char *qtest_ok(QTestState *s, const char *cmd)
{
    char *reply;

    qtest_sendf(s, "%s\n", cmd);
    reply = qtest_recv_line(s);
    if (strcmp(reply, "OK") && !g_str_has_prefix(reply, "OK ")) {
        g_error("libqtest: '%s' failed: %s", cmd, reply);
    }
    memmove(reply, reply + (reply[2] ? 3 : 2), strlen(reply) - (reply[2] ? 2 : 1));
    return reply;
}

static uint64_t qtest_ok_num(QTestState *s, const char *cmd)
{
    g_autofree char *v = qtest_ok(s, cmd);
    char *end;
    uint64_t n = g_ascii_strtoull(v, &end, 0);

    if (!*v || *end) {
        g_error("libqtest: '%s' gave a bad number: %s", cmd, v);
    }
    return n;
}

static uint64_t qtest_read_n(QTestState *s, char sz, uint64_t addr)
{
    g_autofree char *cmd = g_strdup_printf("read%c 0x%" G_GINT64_MODIFIER "x", sz, addr);
    return qtest_ok_num(s, cmd);
}

static void qtest_write_n(QTestState *s, char sz, uint64_t addr, uint64_t v)
{
    g_autofree char *cmd = g_strdup_printf("write%c 0x%" G_GINT64_MODIFIER "x 0x%"
                                           G_GINT64_MODIFIER "x", sz, addr, v);
    g_free(qtest_ok(s, cmd));
}

uint8_t qtest_readb(QTestState *s, uint64_t addr)
{
    return qtest_read_n(s, 'b', addr);
}
uint16_t qtest_readw(QTestState *s, uint64_t addr)
{
    return qtest_read_n(s, 'w', addr);
}
uint32_t qtest_readl(QTestState *s, uint64_t addr)
{
    return qtest_read_n(s, 'l', addr);
}
uint64_t qtest_readq(QTestState *s, uint64_t addr)
{
    return qtest_read_n(s, 'q', addr);
}

void qtest_writeb(QTestState *s, uint64_t addr, uint8_t v)
{
    qtest_write_n(s, 'b', addr, v);
}
void qtest_writew(QTestState *s, uint64_t addr, uint16_t v)
{
    qtest_write_n(s, 'w', addr, v);
}
void qtest_writel(QTestState *s, uint64_t addr, uint32_t v)
{
    qtest_write_n(s, 'l', addr, v);
}
void qtest_writeq(QTestState *s, uint64_t addr, uint64_t v)
{
    qtest_write_n(s, 'q', addr, v);
}

void qtest_memread(QTestState *s, uint64_t addr, void *data, size_t size)
{
    g_autofree char *cmd = g_strdup_printf("read 0x%" G_GINT64_MODIFIER "x 0x%zx",
                                           addr, size);
    g_autofree char *hex = NULL;
    uint8_t *p = data;

    if (size == 0) {
        return;
    }
    hex = qtest_ok(s, cmd);
    g_assert(g_str_has_prefix(hex, "0x") && strlen(hex) == 2 + 2 * size);
    for (size_t i = 0; i < size; i++) {
        p[i] = g_ascii_xdigit_value(hex[2 + 2 * i]) << 4 |
               g_ascii_xdigit_value(hex[3 + 2 * i]);
    }
}

void qtest_memwrite(QTestState *s, uint64_t addr, const void *data, size_t size)
{
    GString *cmd;
    const uint8_t *p = data;

    if (size == 0) {
        return;     /* the protocol cannot say "nothing": QEMU answers ERR */
    }
    cmd = g_string_new(NULL);
    g_string_printf(cmd, "write 0x%" G_GINT64_MODIFIER "x 0x%zx 0x", addr, size);
    for (size_t i = 0; i < size; i++) {
        g_string_append_printf(cmd, "%02x", p[i]);
    }
    g_free(qtest_ok(s, cmd->str));
    g_string_free(cmd, TRUE);
}

void qtest_bufread(QTestState *s, uint64_t addr, void *data, size_t size)
{
    g_autofree char *cmd = g_strdup_printf("b64read 0x%" G_GINT64_MODIFIER "x 0x%zx",
                                           addr, size);
    g_autofree char *b64 = qtest_ok(s, cmd);
    gsize len;
    g_autofree guchar *raw = g_base64_decode(b64, &len);

    g_assert_cmpuint(len, ==, size);
    memcpy(data, raw, size);
}

void qtest_bufwrite(QTestState *s, uint64_t addr, const void *data, size_t size)
{
    g_autofree char *b64 = g_base64_encode(data, size);
    g_autofree char *cmd = g_strdup_printf("b64write 0x%" G_GINT64_MODIFIER "x 0x%zx %s",
                                           addr, size, b64);
    g_free(qtest_ok(s, cmd));
}

void qtest_memset(QTestState *s, uint64_t addr, uint8_t pattern, size_t size)
{
    g_autofree char *cmd = g_strdup_printf("memset 0x%" G_GINT64_MODIFIER
                                           "x 0x%zx 0x%02x", addr, size, pattern);
    g_free(qtest_ok(s, cmd));
}

static uint32_t qtest_in_n(QTestState *s, char sz, uint16_t port)
{
    g_autofree char *cmd = g_strdup_printf("in%c 0x%x", sz, port);
    return qtest_ok_num(s, cmd);
}

static void qtest_out_n(QTestState *s, char sz, uint16_t port, uint32_t v)
{
    g_autofree char *cmd = g_strdup_printf("out%c 0x%x 0x%x", sz, port, v);
    g_free(qtest_ok(s, cmd));
}

uint8_t qtest_inb(QTestState *s, uint16_t port)
{
    return qtest_in_n(s, 'b', port);
}
uint16_t qtest_inw(QTestState *s, uint16_t port)
{
    return qtest_in_n(s, 'w', port);
}
uint32_t qtest_inl(QTestState *s, uint16_t port)
{
    return qtest_in_n(s, 'l', port);
}
void qtest_outb(QTestState *s, uint16_t port, uint8_t v)
{
    qtest_out_n(s, 'b', port, v);
}
void qtest_outw(QTestState *s, uint16_t port, uint16_t v)
{
    qtest_out_n(s, 'w', port, v);
}
void qtest_outl(QTestState *s, uint16_t port, uint32_t v)
{
    qtest_out_n(s, 'l', port, v);
}

void qtest_set_reg(QTestState *s, int cpu, const char *name, uint64_t value)
{
    g_autofree char *cmd = g_strdup_printf("x-set-reg %d %s 0x%" G_GINT64_MODIFIER "x",
                                           cpu, name, value);
    g_free(qtest_ok(s, cmd));
}

uint64_t qtest_get_reg(QTestState *s, int cpu, const char *name)
{
    g_autofree char *cmd = g_strdup_printf("x-get-reg %d %s", cpu, name);
    return qtest_ok_num(s, cmd);
}

char *qtest_run_status(QTestState *s)
{
    JsonNode *ret = qtest_qmp_assert_success_ref(s, "{\"execute\": \"query-status\"}");
    char *st = g_strdup(json_object_get_string_member(json_node_get_object(ret),
                                                      "status"));

    json_node_unref(ret);
    return st;
}

void qtest_assert_ok(JsonObject *rsp)
{
    g_assert_nonnull(rsp);
    if (qtest_error_desc(rsp)) {
        g_test_message("unexpected error: %s", qtest_error_desc(rsp));
    }
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
}
