/* A QMP client for unit tests that run the monitor in-process on their own main context. */
#include "qmp-unit-client.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

QmpUnitClient qmp_unit_client_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    QmpUnitClient c = { socket(AF_UNIX, SOCK_STREAM, 0), g_string_new(NULL) };

    g_assert_cmpuint(strlen(path), <, sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    g_assert_cmpint(connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    /* Non-blocking, so waiting for a line can keep the monitor's loop turning. */
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    return c;
}

char *qmp_unit_client_line(QmpUnitClient *c)
{
    for (int i = 0; i < 100000; i++) {
        char *nl = memchr(c->in->str, '\n', c->in->len);
        if (nl) {
            char *line = g_strndup(c->in->str, nl - c->in->str + 1);
            g_string_erase(c->in, 0, nl - c->in->str + 1);
            return line;
        }
        char buf[4096];
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n > 0) {
            g_string_append_len(c->in, buf, n);
            continue;
        }
        g_assert_true(n < 0 && errno == EAGAIN);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(100);
    }
    g_error("no line from the monitor");
}

void qmp_unit_client_send(QmpUnitClient *c, const char *req, int fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = (char *)req, .iov_len = strlen(req) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (fd >= 0) {
        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    g_assert_cmpint(sendmsg(c->fd, &msg, 0), ==, (ssize_t)strlen(req));
}

void qmp_unit_client_negotiate(QmpUnitClient *c)
{
    qmp_unit_client_send(c, "{\"execute\": \"qmp_capabilities\"}", -1);
    g_autofree char *ok = qmp_unit_client_line(c);
    g_assert_cmpstr(ok, ==, "{\"return\": {}}\r\n");
}

void qmp_unit_client_close(QmpUnitClient *c)
{
    close(c->fd);
    g_string_free(c->in, TRUE);
    for (int i = 0; i < 100; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
}
