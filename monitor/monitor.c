/* Monitor transports: listening sockets, client connections, fd passing, output. */
#include "monitor-internal.h"
#include "monitor/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

struct MonitorServer {
    char *id;                 /* -chardev id, or NULL */
    int mode;                 /* MODE_* */
    bool is_stdio;
    bool is_unix;
    char *path;               /* unix socket path */
    char *host;
    char *port;
    bool wait;
    bool client;              /* server=off: we connect, as QEMU's libqtest expects */
    int listen_fd;
    guint watch;
    bool created_socket;      /* we bound path, so we unlink it */
    char *fd_str;             /* fd=N as given: a socket inherited from our parent */
    int inherited_fd;         /* that socket, checked; -1 if none */
};

enum { MODE_NONE, MODE_QMP, MODE_HMP };

static GPtrArray *servers;     /* MonitorServer */
static GList *monitors;        /* Monitor, connected */
static __thread Monitor *cur_mon;

static void monitor_free(Monitor *mon);

/* ---------------------------------------------------------------------- */
/* Current monitor, output                                                  */
/* ---------------------------------------------------------------------- */

Monitor *monitor_cur(void)
{
    return cur_mon;
}

void monitor_set_cur(Monitor *mon)
{
    cur_mon = mon;
}

bool monitor_is_qmp(const Monitor *mon)
{
    return mon && mon->qmp;
}

static void monitor_close(Monitor *mon);
static void monitor_enforce_budget(void);

static bool monitor_flush(Monitor *mon)
{
    while (mon->outbuf->len) {
        ssize_t n;
        if (mon->can_pass_fds || mon->out_fd != STDOUT_FILENO) {
            n = send(mon->out_fd, mon->outbuf->str, mon->outbuf->len, MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK) {
                n = write(mon->out_fd, mon->outbuf->str, mon->outbuf->len);
            }
        } else {
            n = write(mon->out_fd, mon->outbuf->str, mon->outbuf->len);
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return true;
            }
            return false;
        }
        g_string_erase(mon->outbuf, 0, n);
    }
    if (mon->outbuf->allocated_len > (1u << 20)) {
        /* Give back what a burst of output made us allocate. */
        g_string_free(mon->outbuf, TRUE);
        mon->outbuf = g_string_new(NULL);
    }
    return true;
}

static gboolean monitor_writable(gint fd, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;

    if (!monitor_flush(mon)) {
        mon->out_watch = 0;
        monitor_close(mon);
        return G_SOURCE_REMOVE;
    }
    if (mon->outbuf->len == 0) {
        mon->out_watch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

void monitor_send(Monitor *mon, const char *data, size_t len)
{
    if (mon->capture) {
        g_string_append_len(mon->capture, data, len);
        return;
    }
    if (mon->dead || mon->out_fd < 0) {
        return;
    }
    if (mon->outbuf->len + len > MONITOR_MAX_OUTBUF) {
        /* A client that never reads must not make us grow without bound. */
        monitor_close(mon);
        return;
    }
    g_string_append_len(mon->outbuf, data, len);
    if (mon->out_watch) {
        monitor_enforce_budget();
        return;
    }
    if (!monitor_flush(mon)) {
        monitor_close(mon);
        return;
    }
    if (mon->outbuf->len) {
        mon->out_watch = g_unix_fd_add(mon->out_fd, G_IO_OUT, monitor_writable, mon);
        monitor_enforce_budget();
    }
}

static void monitor_vprintf(Monitor *mon, const char *fmt, va_list ap)
{
    g_autofree char *s = g_strdup_vprintf(fmt, ap);
    GString *out = g_string_sized_new(strlen(s) + 16);

    /* HMP is a terminal protocol: QEMU sends CR LF. */
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            g_string_append_c(out, '\r');
        }
        g_string_append_c(out, *p);
    }
    monitor_send(mon, out->str, out->len);
    g_string_free(out, TRUE);
}

void monitor_printf(Monitor *mon, const char *fmt, ...)
{
    if (!mon || mon->qmp) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    monitor_vprintf(mon, fmt, ap);
    va_end(ap);
}

void warn_report(const char *fmt, ...)
{
    Monitor *mon = monitor_cur();
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    if (mon && !mon->qmp) {
        monitor_printf(mon, "warning: %s\n", msg);
    } else {
        /* guestdump-convert names itself with g_set_prgname() */
        fprintf(stderr, "%s: warning: %s\n",
                g_get_prgname() ? g_get_prgname() : "guestdump", msg);
    }
}

/* ---------------------------------------------------------------------- */
/* Passed fds                                                               */
/* ---------------------------------------------------------------------- */

int monitor_take_pending_fd(Monitor *mon)
{
    if (!mon || g_queue_is_empty(&mon->pending_fds)) {
        return -1;
    }
    /* QEMU hands out the last fd that arrived; keep that rule. */
    return GPOINTER_TO_INT(g_queue_pop_tail(&mon->pending_fds));
}

void monitor_drop_pending_fds(Monitor *mon)
{
    while (!g_queue_is_empty(&mon->pending_fds)) {
        close(GPOINTER_TO_INT(g_queue_pop_head(&mon->pending_fds)));
    }
}

/* ---------------------------------------------------------------------- */
/* Connections                                                              */
/* ---------------------------------------------------------------------- */

GList *monitor_qmp_clients(void)
{
    GList *out = NULL;
    for (GList *l = monitors; l; l = l->next) {
        Monitor *mon = l->data;
        if (mon->qmp && mon->negotiated && !mon->dead) {
            out = g_list_prepend(out, mon);
        }
    }
    return g_list_reverse(out);
}

static void monitor_free(Monitor *mon)
{
    monitor_drop_pending_fds(mon);
    monitor_fds_cleanup(mon);
    qmp_json_streamer_free(mon->js);
    if (mon->line) {
        g_string_free(mon->line, TRUE);
    }
    if (mon->outbuf) {
        g_string_free(mon->outbuf, TRUE);
    }
    g_free(mon);
}

static void monitor_close(Monitor *mon)
{
    if (mon->dead) {
        return;
    }
    mon->dead = true;
    if (mon->in_watch) {
        g_source_remove(mon->in_watch);
        mon->in_watch = 0;
    }
    if (mon->out_watch) {
        g_source_remove(mon->out_watch);
        mon->out_watch = 0;
    }
    if (mon->in_fd > STDERR_FILENO) {
        close(mon->in_fd);
    }
    if (mon->out_fd > STDERR_FILENO && mon->out_fd != mon->in_fd) {
        close(mon->out_fd);
    }
    mon->in_fd = mon->out_fd = -1;
    monitors = g_list_remove(monitors, mon);
    if (!monitors) {
        monitor_fdsets_cleanup();
    }
    if (!mon->busy) {
        monitor_free(mon);
    }
}

/* Memory a client's buffers hold: unread output, an unfinished request. */
static size_t monitor_buffered(const Monitor *mon)
{
    size_t n = mon->outbuf ? mon->outbuf->allocated_len : 0;

    if (mon->js) {
        n += qmp_json_streamer_buffered(mon->js);
    }
    if (mon->line) {
        n += mon->line->allocated_len;
    }
    return n;
}

static size_t monitor_budget(void)
{
    static size_t budget;

    if (!budget) {
        const char *env = g_getenv("GUESTDUMP_MONITOR_BUDGET");
        guint64 v = env ? g_ascii_strtoull(env, NULL, 10) : 0;

        budget = v ? (size_t)v : MONITOR_MAX_BUFFERED_TOTAL;
    }
    return budget;
}

/* Frees a client dropped by the budget once nothing up the stack uses it. */
static gboolean monitor_release(gpointer opaque)
{
    Monitor *mon = opaque;

    if (--mon->busy == 0 && mon->dead) {
        monitor_free(mon);
    }
    return G_SOURCE_REMOVE;
}

/*
 * The host-wide bound: while all clients together buffer more than the
 * budget, the one holding most is dropped. It may be in the middle of a
 * command, or in a list of event recipients, so it is only freed from
 * the main loop.
 */
static void monitor_enforce_budget(void)
{
    for (;;) {
        Monitor *worst = NULL;
        size_t total = 0, worst_n = 0;

        for (GList *l = monitors; l; l = l->next) {
            Monitor *mon = l->data;
            size_t n = monitor_buffered(mon);

            total += n;
            if (n > worst_n) {
                worst = mon;
                worst_n = n;
            }
        }
        if (total <= monitor_budget() || !worst) {
            return;
        }
        fprintf(stderr, "guestdump: monitor: dropping a client that holds %zu KiB of "
                "unread output and unfinished input: all clients together hold %zu "
                "KiB, more than the %zu KiB budget\n", worst_n >> 10, total >> 10,
                monitor_budget() >> 10);
        worst->busy++;
        monitor_close(worst);
        g_idle_add(monitor_release, worst);
    }
}

static void monitor_receive(Monitor *mon, const char *buf, size_t len)
{
    mon->busy++;
    if (mon->qmp) {
        qmp_json_streamer_feed(mon->js, buf, len);
    } else {
        monitor_hmp_feed(mon, buf, len);
    }
    mon->busy--;
    if (mon->dead && !mon->busy) {
        monitor_free(mon);
        return;
    }
    monitor_enforce_budget();
}

static gboolean monitor_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    Monitor *mon = opaque;
    char buf[65536];
    ssize_t n;

    if (mon->can_pass_fds) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * 16)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = control.buf, .msg_controllen = sizeof(control.buf),
        };
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n >= 0) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
                    continue;
                }
                size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *fds = (int *)CMSG_DATA(c);
                for (size_t i = 0; i < nfds; i++) {
                    int pfd;
                    memcpy(&pfd, &fds[i], sizeof(int));
                    guint pending = g_queue_get_length(&mon->pending_fds);
                    if (pending >= MONITOR_MAX_PENDING_FDS) {
                        close(pfd);
                    } else {
                        g_queue_push_tail(&mon->pending_fds, GINT_TO_POINTER(pfd));
                    }
                }
            }
        }
    } else {
        n = read(fd, buf, sizeof(buf));
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        mon->in_watch = 0;
        monitor_close(mon);
        return G_SOURCE_REMOVE;
    }
    monitor_receive(mon, buf, n);
    return G_SOURCE_CONTINUE;
}

static Monitor *monitor_new(MonitorServer *srv, int in_fd, int out_fd, bool is_unix)
{
    Monitor *mon = g_new0(Monitor, 1);

    mon->qmp = srv->mode == MODE_QMP;
    mon->server = srv;
    mon->in_fd = in_fd;
    mon->out_fd = out_fd;
    mon->can_pass_fds = is_unix;
    mon->outbuf = g_string_new(NULL);
    g_queue_init(&mon->pending_fds);
    if (mon->qmp) {
        mon->js = qmp_json_streamer_new(monitor_qmp_handle, mon);
    } else {
        mon->line = g_string_new(NULL);
    }
    monitors = g_list_append(monitors, mon);
    mon->in_watch = g_unix_fd_add(in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                  monitor_readable, mon);
    if (mon->qmp) {
        monitor_qmp_greet(mon);
    } else {
        monitor_hmp_greet(mon);
    }
    return mon;
}

static void server_accept_one(MonitorServer *srv, int fd)
{
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    monitor_new(srv, fd, fd, srv->is_unix);
}

static gboolean server_acceptable(gint lfd, GIOCondition cond, gpointer opaque);

/*
 * With every slot taken, a newcomer still gets in while some QMP client has
 * not sent qmp_capabilities: the oldest such one is dropped. A management
 * client negotiates as soon as it connects, so connections opened and left
 * idle cannot lock it out.
 */
static bool monitor_make_room(void)
{
    for (GList *l = monitors; l; l = l->next) {
        Monitor *mon = l->data;

        if (mon->qmp && !mon->negotiated) {
            fprintf(stderr, "guestdump: monitor: %d clients are connected; dropping "
                    "the oldest that has not negotiated to let a new one in\n",
                    MONITOR_MAX_CLIENTS);
            mon->busy++;
            monitor_close(mon);
            g_idle_add(monitor_release, mon);
            return true;
        }
    }
    return false;
}

static gboolean server_rearm(gpointer opaque)
{
    MonitorServer *srv = opaque;
    srv->watch = g_unix_fd_add(srv->listen_fd, G_IO_IN, server_acceptable, srv);
    return G_SOURCE_REMOVE;
}

static gboolean server_acceptable(gint lfd, GIOCondition cond, gpointer opaque)
{
    MonitorServer *srv = opaque;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) {
            return G_SOURCE_CONTINUE;
        }
        /*
         * Out of fds (EMFILE): the listener stays readable, so retrying at
         * once would spin. Pause this listener briefly instead.
         */
        srv->watch = g_timeout_add(100, server_rearm, srv);
        return G_SOURCE_REMOVE;
    }
    if (g_list_length(monitors) >= MONITOR_MAX_CLIENTS && !monitor_make_room()) {
        /* Each client costs buffers and a watch: bound them. */
        fprintf(stderr, "guestdump: monitor: refusing a connection: %d clients are "
                "connected and all have negotiated\n", MONITOR_MAX_CLIENTS);
        close(fd);
        return G_SOURCE_CONTINUE;
    }
    server_accept_one(srv, fd);
    return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------------- */
/* Command-line specs                                                       */
/* ---------------------------------------------------------------------- */

static bool parse_onoff(const char *key, const char *val, bool *out, Error **errp)
{
    if (!val || !strcmp(val, "on") || !strcmp(val, "yes") || !strcmp(val, "true")) {
        *out = true;
    } else if (!strcmp(val, "off") || !strcmp(val, "no") || !strcmp(val, "false")) {
        *out = false;
    } else {
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
        return false;
    }
    return true;
}

/* Options after the address: server, wait, nowait, plus what -chardev names. */
static bool parse_socket_opts(MonitorServer *srv, char **opts, bool *server,
                              Error **errp)
{
    for (; *opts; opts++) {
        char *eq = strchr(*opts, '=');
        g_autofree char *key = eq ? g_strndup(*opts, eq - *opts) : g_strdup(*opts);
        const char *val = eq ? eq + 1 : NULL;

        if (!strcmp(key, "server")) {
            if (!parse_onoff(key, val, server, errp)) {
                return false;
            }
        } else if (!strcmp(key, "wait")) {
            if (!parse_onoff(key, val, &srv->wait, errp)) {
                return false;
            }
        } else if (!strcmp(key, "nowait") && !val) {
            srv->wait = false;
        } else if (!strcmp(key, "path") && val) {
            g_free(srv->path);
            srv->path = g_strdup(val);
            srv->is_unix = true;
        } else if (!strcmp(key, "host") && val) {
            g_free(srv->host);
            srv->host = g_strdup(val);
        } else if (!strcmp(key, "port") && val) {
            g_free(srv->port);
            srv->port = g_strdup(val);
        } else if (!strcmp(key, "id") && val) {
            g_free(srv->id);
            srv->id = g_strdup(val);
        } else if (!strcmp(key, "fd") && val) {
            g_free(srv->fd_str);
            srv->fd_str = g_strdup(val);
        } else if (!strcmp(key, "ipv4") || !strcmp(key, "ipv6") ||
                   !strcmp(key, "telnet") || !strcmp(key, "nodelay") ||
                   !strcmp(key, "mux") || !strcmp(key, "signal") ||
                   !strcmp(key, "logfile") || !strcmp(key, "logappend")) {
            /* Options libvirt and scripts pass that do not change us. */
        } else {
            error_setg(errp, "Invalid parameter '%s'", key);
            return false;
        }
    }
    return true;
}

/*
 * fd=N names a socket our parent left open for us: libvirt passes a listening
 * one, QEMU's python QEMUMachine one end of a socketpair. QEMU 7.2 parses the
 * number with qemu_strtoi (decimal, whole string, int range; only a range
 * error adds errno's text) and then wants a socket; the texts are its.
 */
static bool server_take_fd(MonitorServer *srv, Error **errp)
{
    const char *s = srv->fd_str;
    char *end;
    long long v;
    struct stat st;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (v > INT_MAX || v < INT_MIN) {
        errno = ERANGE;
    }
    if (end == s || *end || errno) {
        if (errno) {
            error_setg_errno(errp, errno, "Unable to parse FD number %s", s);
        } else {
            error_setg(errp, "Unable to parse FD number %s", s);
        }
        return false;
    }
    if (v < 0 || fstat((int)v, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        error_setg(errp, "File descriptor '%s' is not a socket", s);
        return false;
    }
    srv->inherited_fd = (int)v;
    /* Ours now: children we might start must not inherit it. */
    fcntl(srv->inherited_fd, F_SETFD, FD_CLOEXEC);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    /* Only a unix socket can carry fds (getfd, add-fd). */
    srv->is_unix = getsockname(srv->inherited_fd, (struct sockaddr *)&ss, &len) == 0 &&
                   ss.ss_family == AF_UNIX;
    return true;
}

/* After the options: at most one address, and an fd= must be a socket. */
static bool server_check_address(MonitorServer *srv, Error **errp)
{
    if (srv->is_stdio) {
        if (srv->fd_str) {
            error_setg(errp, "Invalid parameter 'fd'");
            return false;
        }
        return true;
    }
    if (!!srv->path + !!srv->fd_str + !!srv->host > 1) {
        error_setg(errp, "None or one of 'path', 'fd' or 'host' option required.");
        return false;
    }
    return !srv->fd_str || server_take_fd(srv, errp);
}

static void server_free(MonitorServer *srv)
{
    g_free(srv->fd_str);
    g_free(srv->id);
    g_free(srv->path);
    g_free(srv->host);
    g_free(srv->port);
    g_free(srv);
}

static MonitorServer *server_parse(const char *spec, Error **errp)
{
    MonitorServer *srv = g_new0(MonitorServer, 1);
    g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
    bool server = false;

    srv->listen_fd = -1;
    srv->inherited_fd = -1;
    srv->wait = true;
    if (!parts[0]) {
        error_setg(errp, "chardev: no backend given");
        goto fail;
    }
    if (!strcmp(parts[0], "stdio")) {
        srv->is_stdio = true;
        server = true;
    } else if (g_str_has_prefix(parts[0], "unix:")) {
        srv->is_unix = true;
        srv->path = g_strdup(parts[0] + 5);
    } else if (g_str_has_prefix(parts[0], "tcp:")) {
        const char *hp = parts[0] + 4;
        const char *colon = strrchr(hp, ':');
        if (!colon) {
            error_setg(errp, "host and/or port not specified");
            goto fail;
        }
        /* "[::1]:4444": getaddrinfo wants the address without brackets. */
        if (hp[0] == '[' && colon > hp && colon[-1] == ']') {
            srv->host = g_strndup(hp + 1, colon - hp - 2);
        } else {
            srv->host = g_strndup(hp, colon - hp);
        }
        srv->port = g_strdup(colon + 1);
    } else {
        error_setg(errp, "'%s' is not a valid char driver", parts[0]);
        goto fail;
    }
    if (!parse_socket_opts(srv, parts + 1, &server, errp)) {
        goto fail;
    }
    srv->client = !server;
    if (!server_check_address(srv, errp)) {
        goto fail;
    }
    if (srv->is_unix && !srv->fd_str && (!srv->path || !*srv->path)) {
        error_setg(errp, "chardev: socket path not given");
        goto fail;
    }
    return srv;
fail:
    server_free(srv);
    return NULL;
}

static bool monitor_add(const char *spec, int mode, Error **errp)
{
    MonitorServer *srv = server_parse(spec, errp);
    if (!srv) {
        return false;
    }
    srv->mode = mode;
    if (!servers) {
        servers = g_ptr_array_new();
    }
    g_ptr_array_add(servers, srv);
    return true;
}

bool monitor_add_qmp(const char *spec, Error **errp)
{
    return monitor_add(spec, MODE_QMP, errp);
}

bool monitor_add_hmp(const char *spec, Error **errp)
{
    return monitor_add(spec, MODE_HMP, errp);
}

bool monitor_chardev_add(const char *opts, Error **errp)
{
    g_auto(GStrv) parts = g_strsplit(opts, ",", 2);
    MonitorServer *srv;

    if (!parts[0] || (strcmp(parts[0], "socket") && strcmp(parts[0], "stdio"))) {
        error_setg(errp, "chardev: backend '%s' is not supported (use socket or stdio)",
                   parts[0] ? parts[0] : "");
        return false;
    }
    srv = g_new0(MonitorServer, 1);
    srv->listen_fd = -1;
    srv->inherited_fd = -1;
    srv->wait = true;
    bool server = false;
    g_auto(GStrv) rest = g_strsplit(parts[1] ? parts[1] : "", ",", -1);
    if (!strcmp(parts[0], "stdio")) {
        srv->is_stdio = true;
        server = true;
    }
    if (!parse_socket_opts(srv, rest, &server, errp)) {
        server_free(srv);
        return false;
    }
    if (!srv->id) {
        error_setg(errp, "Parameter 'id' is missing");
        server_free(srv);
        return false;
    }
    if (!server_check_address(srv, errp)) {
        server_free(srv);
        return false;
    }
    if (!srv->is_stdio && !srv->fd_str && !srv->is_unix && !srv->port) {
        error_setg(errp, "chardev: socket needs path=, host=/port= or fd=");
        server_free(srv);
        return false;
    }
    srv->client = !server;
    if (!servers) {
        servers = g_ptr_array_new();
    }
    for (guint i = 0; i < servers->len; i++) {
        MonitorServer *o = g_ptr_array_index(servers, i);
        if (o->id && !strcmp(o->id, srv->id)) {
            error_setg(errp, "attempt to add duplicate property '%s' to object (type "
                       "'container')", srv->id);
            server_free(srv);
            return false;
        }
    }
    g_ptr_array_add(servers, srv);
    return true;
}

bool monitor_mon_add(const char *opts, Error **errp)
{
    g_auto(GStrv) parts = g_strsplit(opts, ",", -1);
    const char *chardev = NULL;
    int mode = MODE_HMP;

    for (char **p = parts; *p; p++) {
        if (g_str_has_prefix(*p, "chardev=")) {
            chardev = *p + 8;
        } else if (!strcmp(*p, "mode=control")) {
            mode = MODE_QMP;
        } else if (!strcmp(*p, "mode=readline")) {
            mode = MODE_HMP;
        } else if (g_str_has_prefix(*p, "pretty=") || g_str_has_prefix(*p, "id=")) {
            /* Pretty-printing is not offered; the compact form is what clients parse. */
        } else if (!strchr(*p, '=') && p == parts) {
            chardev = *p;
        } else {
            error_setg(errp, "Invalid parameter '%s'", *p);
            return false;
        }
    }
    if (!chardev) {
        error_setg(errp, "Parameter 'chardev' is missing");
        return false;
    }
    for (guint i = 0; servers && i < servers->len; i++) {
        MonitorServer *srv = g_ptr_array_index(servers, i);
        if (srv->id && !strcmp(srv->id, chardev)) {
            if (srv->mode != MODE_NONE) {
                error_setg(errp, "Device '%s' is in use", chardev);
                return false;
            }
            srv->mode = mode;
            return true;
        }
    }
    error_setg(errp, "chardev \"%s\" not found", chardev);
    return false;
}

/* server=off: one outgoing connection, made at startup. */
/* An empty host means loopback, not every address (docs/compat.md M5). */
static const char *server_host(const MonitorServer *srv)
{
    return srv->host && *srv->host ? srv->host : "127.0.0.1";
}

static struct addrinfo *server_resolve(const MonitorServer *srv, bool passive,
                                       Error **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
    };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(server_host(srv), srv->port, &hints, &res);

    if (rc) {
        error_setg(errp, "address resolution failed for %s:%s: %s", server_host(srv),
                   srv->port, gai_strerror(rc));
        return NULL;
    }
    return res;
}

static int server_connect(MonitorServer *srv, Error **errp)
{
    int fd = -1;

    if (srv->is_unix) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(srv->path) >= sizeof(sa.sun_path)) {
            error_setg(errp, "UNIX socket path '%s' is too long", srv->path);
            return -1;
        }
        strcpy(sa.sun_path, srv->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            error_setg_errno(errp, errno, "Failed to connect to '%s'", srv->path);
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
        return fd;
    }
    const char *host = server_host(srv);
    struct addrinfo *res = server_resolve(srv, false, errp);
    if (!res) {
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        error_setg_errno(errp, errno, "Failed to connect to '%s:%s'", host, srv->port);
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static bool server_listen(MonitorServer *srv, Error **errp)
{
    int fd;

    if (srv->inherited_fd >= 0) {
        /* As QEMU: the parent may pass a bound socket not yet listening. */
        if (listen(srv->inherited_fd, 16) < 0) {
            error_setg_errno(errp, errno, "Failed to listen on fd socket");
            return false;
        }
        /* Its path (if any) is the parent's to remove: created_socket stays off. */
        srv->listen_fd = srv->inherited_fd;
        srv->inherited_fd = -1;
        return true;
    }
    if (srv->is_unix) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(srv->path) >= sizeof(sa.sun_path)) {
            error_setg(errp, "UNIX socket path '%s' is too long", srv->path);
            return false;
        }
        strcpy(sa.sun_path, srv->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error_setg_errno(errp, errno, "Failed to create socket");
            return false;
        }
        /* QEMU replaces a stale socket file left by a previous run. */
        unlink(srv->path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            error_setg_errno(errp, errno, "Failed to bind socket to %s", srv->path);
            close(fd);
            return false;
        }
        srv->created_socket = true;
    } else {
        const char *host = server_host(srv);
        struct addrinfo *res = server_resolve(srv, true, errp);
        if (!res) {
            return false;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        }
        if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
            error_setg_errno(errp, errno, "Failed to bind socket to %s:%s", host,
                             srv->port);
            if (fd >= 0) {
                close(fd);
            }
            freeaddrinfo(res);
            return false;
        }
        freeaddrinfo(res);
    }
    if (listen(fd, 16) < 0) {
        error_setg_errno(errp, errno, "Failed to listen on socket");
        close(fd);
        return false;
    }
    srv->listen_fd = fd;
    return true;
}

bool monitor_start(Error **errp)
{
    int stdio_users = 0;

    for (guint i = 0; servers && i < servers->len; i++) {
        MonitorServer *srv = g_ptr_array_index(servers, i);
        if (srv->is_stdio && srv->mode != MODE_NONE && ++stdio_users > 1) {
            error_setg(errp, "cannot use stdio by multiple character devices");
            return false;
        }
    }
    for (guint i = 0; servers && i < servers->len; i++) {
        MonitorServer *srv = g_ptr_array_index(servers, i);
        if (srv->mode == MODE_NONE) {
            /* A -chardev nobody uses as a monitor. */
            continue;
        }
        if (srv->is_stdio) {
            monitor_new(srv, STDIN_FILENO, STDOUT_FILENO, false);
            continue;
        }
        if (srv->client && srv->inherited_fd >= 0) {
            /* A connected socket (a socketpair's end): the one client. */
            server_accept_one(srv, srv->inherited_fd);
            srv->inherited_fd = -1;
            continue;
        }
        if (srv->client) {
            int fd = server_connect(srv, errp);
            if (fd < 0) {
                return false;
            }
            server_accept_one(srv, fd);
            continue;
        }
        if (!server_listen(srv, errp)) {
            return false;
        }
        if (srv->wait) {
            if (srv->fd_str) {
                fprintf(stderr, "guestdump: waiting for connection on: fd:%s\n",
                        srv->fd_str);
            } else {
                fprintf(stderr, "guestdump: waiting for connection on: %s%s%s%s\n",
                        srv->is_unix ? "unix:" : "tcp:",
                        srv->is_unix ? srv->path : (srv->host ? srv->host : ""),
                        srv->is_unix ? "" : ":", srv->is_unix ? "" : srv->port);
            }
            int fd;
            do {
                fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            } while (fd < 0 && errno == EINTR);
            if (fd >= 0) {
                server_accept_one(srv, fd);
            }
        }
        srv->watch = g_unix_fd_add(srv->listen_fd, G_IO_IN, server_acceptable, srv);
    }
    return true;
}

bool monitor_has_clients(void)
{
    return monitors != NULL;
}

void monitor_flush_all(int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (GList *l = monitors; l; l = l->next) {
        Monitor *mon = l->data;
        while (!mon->dead && mon->outbuf->len) {
            gint64 left = (deadline - g_get_monotonic_time()) / 1000;
            if (left <= 0 || !monitor_flush(mon)) {
                break;
            }
            if (mon->outbuf->len) {
                struct pollfd pfd = { .fd = mon->out_fd, .events = POLLOUT };
                poll(&pfd, 1, (int)left);
            }
        }
    }
}

void monitor_cleanup(void)
{
    monitor_flush_all(1000);
    while (monitors) {
        monitor_close(monitors->data);
    }
    for (guint i = 0; servers && i < servers->len; i++) {
        MonitorServer *srv = g_ptr_array_index(servers, i);
        if (srv->watch) {
            g_source_remove(srv->watch);
        }
        if (srv->listen_fd >= 0) {
            close(srv->listen_fd);
        }
        if (srv->inherited_fd >= 0) {
            /* A -chardev no monitor used: the fd was still handed to us. */
            close(srv->inherited_fd);
        }
        if (srv->created_socket) {
            unlink(srv->path);
        }
        server_free(srv);
    }
    if (servers) {
        g_ptr_array_free(servers, TRUE);
        servers = NULL;
    }
}
