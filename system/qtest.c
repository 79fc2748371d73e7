/* The qtest protocol server: QEMU's line protocol for memory, ports and registers. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "sysemu/cpus.h"
#include "sysemu/physmem.h"
#include "system/machine-internal.h"

/* A command line longer than this is refused: it would only be a huge write. */
#define QTEST_MAX_LINE (256u << 20)
/* Largest single memory transfer; replies are twice as long in hex. */
#define QTEST_MAX_XFER (64u << 20)

typedef struct QTestServer {
    int listen_fd;           /* server=on sockets */
    int in_fd;
    int out_fd;
    guint listen_watch;
    guint in_watch;
    GString *inbuf;
    char *path;              /* unlinked at exit when we created it */
} QTestServer;

static QTestServer *qts;

static void qtest_send(const char *text, size_t len)
{
    while (qts && qts->out_fd >= 0 && len > 0) {
        ssize_t n = write(qts->out_fd, text, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;     /* the client went away; the close is seen on read */
        }
        text += n;
        len -= n;
    }
}

static void G_GNUC_PRINTF(1, 2) qtest_sendf(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *s = NULL;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qtest_send(s, strlen(s));
}

/* QEMU's qemu_strtou64 with base 0: decimal, 0x hex or 0 octal, nothing after. */
static bool parse_num(const char *s, uint64_t *v)
{
    char *end;

    if (!s || !*s || *s == '-') {
        return false;
    }
    errno = 0;
    *v = g_ascii_strtoull(s, &end, 0);
    return !errno && !*end;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = g_ascii_tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return 0;   /* QEMU's hex2nib also maps junk to 0 */
}

static unsigned access_size(char c)
{
    switch (c) {
    case 'b': return 1;
    case 'w': return 2;
    case 'l': return 4;
    case 'q': return 8;
    default:  return 0;
    }
}

static void cmd_rw_mem(gchar **w, int argc, bool is_write)
{
    unsigned size = access_size(w[0][is_write ? 5 : 4]);
    uint64_t addr, value = 0;

    if (argc != (is_write ? 3 : 2) || !parse_num(w[1], &addr) ||
        (is_write && !parse_num(w[2], &value))) {
        qtest_sendf("FAIL invalid arguments to '%s'\n", w[0]);
        return;
    }
    if (is_write) {
        uint64_t le = GUINT64_TO_LE(value);
        guest_bus_write(addr, &le, size);
        qtest_sendf("OK\n");
    } else {
        uint64_t le = 0;
        guest_bus_read(addr, &le, size);
        qtest_sendf("OK 0x%016" G_GINT64_MODIFIER "x\n", GUINT64_FROM_LE(le));
    }
}

static void cmd_io(gchar **w, int argc, bool is_out)
{
    unsigned size = access_size(w[0][is_out ? 3 : 2]);
    uint64_t port, value = 0;

    if (size == 8 || argc != (is_out ? 3 : 2) || !parse_num(w[1], &port) ||
        port > 0xffff || (is_out && !parse_num(w[2], &value))) {
        qtest_sendf("FAIL invalid arguments to '%s'\n", w[0]);
        return;
    }
    if (is_out) {
        ioport_write(port, value, size);
        qtest_sendf("OK\n");
    } else {
        qtest_sendf("OK 0x%04x\n", ioport_read(port, size));
    }
}

static bool parse_xfer(gchar **w, int argc, int want, uint64_t *addr, uint64_t *len)
{
    if (argc != want || !parse_num(w[1], addr) || !parse_num(w[2], len)) {
        qtest_sendf("FAIL invalid arguments to '%s'\n", w[0]);
        return false;
    }
    if (*len > QTEST_MAX_XFER) {
        qtest_sendf("FAIL '%s' of %" G_GUINT64_FORMAT " bytes is larger than "
                    "the limit of %u\n", w[0], *len, QTEST_MAX_XFER);
        return false;
    }
    return true;
}

static void cmd_read(gchar **w, int argc, bool b64)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t addr, len;
    g_autofree uint8_t *data = NULL;
    g_autofree char *enc = NULL;

    if (!parse_xfer(w, argc, 3, &addr, &len)) {
        return;
    }
    if (!b64 && len == 0) {
        qtest_sendf("FAIL read of zero bytes\n");
        return;
    }
    data = g_malloc(len ? len : 1);
    guest_bus_read(addr, data, len);
    if (b64) {
        enc = g_base64_encode(data, len);
        qtest_sendf("OK %s\n", enc);
        return;
    }
    enc = g_malloc(2 * len + 5);
    memcpy(enc, "OK 0x", 5);
    for (uint64_t i = 0; i < len; i++) {
        enc[5 + 2 * i] = hex[data[i] >> 4];
        enc[6 + 2 * i] = hex[data[i] & 15];
    }
    qtest_send(enc, 5 + 2 * len);
    qtest_send("\n", 1);
}

static void cmd_write(gchar **w, int argc)
{
    uint64_t addr, len;
    g_autofree uint8_t *data = NULL;
    size_t hex_len;

    if (!parse_xfer(w, argc, 4, &addr, &len)) {
        return;
    }
    hex_len = strlen(w[3]);
    if (hex_len < 3) {
        qtest_sendf("ERR invalid argument size\n");
        return;
    }
    /* Missing digits are zeros, as QEMU pads them. */
    data = g_malloc0(len ? len : 1);
    for (uint64_t i = 0; i < len && i * 2 + 4 <= hex_len; i++) {
        data[i] = hex_nibble(w[3][i * 2 + 2]) << 4 | hex_nibble(w[3][i * 2 + 3]);
    }
    guest_bus_write(addr, data, len);
    qtest_sendf("OK\n");
}

static void cmd_b64write(gchar **w, int argc)
{
    uint64_t addr, len;
    gsize out_len;
    guchar *data;

    if (!parse_xfer(w, argc, 4, &addr, &len)) {
        return;
    }
    if (strlen(w[3]) < 3) {
        qtest_sendf("ERR invalid argument size\n");
        return;
    }
    data = g_base64_decode_inplace(w[3], &out_len);
    if (out_len != len) {
        g_printerr("b64write: data length mismatch (told %" G_GUINT64_FORMAT
                   ", found %" G_GSIZE_FORMAT ")\n", len, out_len);
    }
    /* QEMU writes len bytes even when fewer were sent; we write what we have. */
    guest_bus_write(addr, data, MIN(out_len, len));
    qtest_sendf("OK\n");
}

static void cmd_memset(gchar **w, int argc)
{
    uint64_t addr, len, pattern, end;

    if (argc != 4 || !parse_num(w[1], &addr) || !parse_num(w[2], &len) ||
        !parse_num(w[3], &pattern)) {
        qtest_sendf("FAIL invalid arguments to 'memset'\n");
        return;
    }
    /* Block by block: the work is bounded by RAM, not by what len claims. */
    end = addr + len < addr ? UINT64_MAX : addr + len;
    for (size_t i = 0; i < physmem_block_count(); i++) {
        const RAMBlock *rb = physmem_block(i);
        uint64_t lo = MAX(addr, rb->gpa);
        uint64_t hi = MIN(end, rb->gpa + rb->size);

        if (lo < hi && !rb->readonly) {
            memset(rb->host + (lo - rb->gpa), (int)(pattern & 0xff), hi - lo);
        }
    }
    qtest_sendf("OK\n");
}

/*
 * QEMU's virtual clock under the qtest accelerator: tests advance it by hand.
 * guestdump's guest has no timers of its own, so the clock only counts.
 */
static int64_t virtual_clock_ns;

static void cmd_clock(gchar **w, int argc, bool set)
{
    int64_t ns = 0;
    char *end;

    if (argc > 2 || (set && argc != 2)) {
        qtest_sendf("FAIL invalid arguments to '%s'\n", w[0]);
        return;
    }
    if (argc == 2) {
        errno = 0;
        ns = g_ascii_strtoll(w[1], &end, 0);
        if (errno || *end || !*w[1] || (!set && ns < 0)) {
            qtest_sendf("FAIL invalid arguments to '%s'\n", w[0]);
            return;
        }
    }
    if (set) {
        /* the clock never goes back, as QEMU's qtest_clock_warp */
        virtual_clock_ns = MAX(virtual_clock_ns, ns);
    } else {
        virtual_clock_ns += ns;
    }
    qtest_sendf("OK %" G_GINT64_FORMAT "\n", virtual_clock_ns);
}

/* guestdump extension: x-set-reg CPU NAME VALUE / x-get-reg CPU NAME */
static void cmd_reg(gchar **w, int argc, bool set)
{
    g_autoptr(Error) err = NULL;
    uint64_t idx, value = 0;
    X86CPU *cpu;

    if (argc != (set ? 4 : 3) || !parse_num(w[1], &idx) ||
        (set && !parse_num(w[3], &value))) {
        qtest_sendf("FAIL invalid arguments to '%s'\n", w[0]);
        return;
    }
    cpu = idx < (uint64_t)machine_cpu_count() ? machine_cpu(idx) : NULL;
    if (!cpu) {
        qtest_sendf("FAIL CPU index %" G_GUINT64_FORMAT " is out of range\n", idx);
        return;
    }
    if (set ? !x86_cpu_set_reg(cpu, w[2], value, &err)
            : !x86_cpu_get_reg(cpu, w[2], &value, &err)) {
        qtest_sendf("FAIL %s\n", error_get_pretty(err));
        return;
    }
    if (set) {
        qtest_sendf("OK\n");
    } else {
        qtest_sendf("OK 0x%016" G_GINT64_MODIFIER "x\n", value);
    }
}

static void qtest_process_command(char *line)
{
    g_auto(GStrv) w = g_strsplit(line, " ", 0);
    int argc = g_strv_length(w);
    const char *c = w[0] ? w[0] : "";

    if (!strcmp(c, "readb") || !strcmp(c, "readw") || !strcmp(c, "readl") ||
        !strcmp(c, "readq")) {
        cmd_rw_mem(w, argc, false);
    } else if (!strcmp(c, "writeb") || !strcmp(c, "writew") ||
               !strcmp(c, "writel") || !strcmp(c, "writeq")) {
        cmd_rw_mem(w, argc, true);
    } else if (!strcmp(c, "inb") || !strcmp(c, "inw") || !strcmp(c, "inl")) {
        cmd_io(w, argc, false);
    } else if (!strcmp(c, "outb") || !strcmp(c, "outw") || !strcmp(c, "outl")) {
        cmd_io(w, argc, true);
    } else if (!strcmp(c, "read") || !strcmp(c, "memread")) {
        cmd_read(w, argc, false);
    } else if (!strcmp(c, "b64read")) {
        cmd_read(w, argc, true);
    } else if (!strcmp(c, "write") || !strcmp(c, "memwrite")) {
        cmd_write(w, argc);
    } else if (!strcmp(c, "b64write")) {
        cmd_b64write(w, argc);
    } else if (!strcmp(c, "memset")) {
        cmd_memset(w, argc);
    } else if (!strcmp(c, "clock_step")) {
        cmd_clock(w, argc, false);
    } else if (!strcmp(c, "clock_set")) {
        cmd_clock(w, argc, true);
    } else if (!strcmp(c, "endianness")) {
        qtest_sendf("OK little\n");
    } else if (!strcmp(c, "x-set-reg")) {
        cmd_reg(w, argc, true);
    } else if (!strcmp(c, "x-get-reg")) {
        cmd_reg(w, argc, false);
    } else {
        qtest_sendf("FAIL Unknown command '%s'\n", c);
    }
}

static void qtest_close_client(void)
{
    if (qts->in_watch) {
        g_source_remove(qts->in_watch);
        qts->in_watch = 0;
    }
    if (qts->in_fd > STDERR_FILENO) {
        close(qts->in_fd);
    }
    if (qts->out_fd > STDERR_FILENO && qts->out_fd != qts->in_fd) {
        close(qts->out_fd);
    }
    qts->in_fd = qts->out_fd = -1;
    g_string_truncate(qts->inbuf, 0);
}

static gboolean qtest_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    char *nl;

    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        qts->in_watch = 0;
        qtest_close_client();
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(qts->inbuf, buf, n);
    while ((nl = memchr(qts->inbuf->str, '\n', qts->inbuf->len))) {
        size_t len = nl - qts->inbuf->str;
        g_autofree char *line = g_strndup(qts->inbuf->str, len);

        g_string_erase(qts->inbuf, 0, len + 1);
        qtest_process_command(line);
        if (!qts || qts->in_fd < 0) {
            return G_SOURCE_REMOVE;
        }
    }
    if (qts->inbuf->len > QTEST_MAX_LINE) {
        qtest_sendf("FAIL command line longer than %u bytes\n", QTEST_MAX_LINE);
        qts->in_watch = 0;
        qtest_close_client();
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void qtest_attach(int in_fd, int out_fd)
{
    qts->in_fd = in_fd;
    qts->out_fd = out_fd;
    qts->in_watch = g_unix_fd_add(in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                  qtest_readable, NULL);
}

static gboolean qtest_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

    if (c < 0) {
        return G_SOURCE_CONTINUE;
    }
    if (qts->in_fd >= 0) {
        close(c);   /* one client at a time, as a QEMU chardev */
        return G_SOURCE_CONTINUE;
    }
    qtest_attach(c, c);
    return G_SOURCE_CONTINUE;
}

/* "unix:PATH[,server=on|off][,wait=on|off]" or "stdio", as QEMU's -qtest takes them. */
bool qtest_server_init(const char *chardev, Error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    g_auto(GStrv) parts = NULL;
    bool server = false;
    int fd;

    g_assert(!qts);
    if (!strcmp(chardev, "stdio")) {
        qts = g_new0(QTestServer, 1);
        qts->listen_fd = -1;
        qts->inbuf = g_string_new(NULL);
        qtest_attach(STDIN_FILENO, STDOUT_FILENO);
        return true;
    }
    if (!g_str_has_prefix(chardev, "unix:")) {
        error_setg(errp, "Failed to initialize device for qtest: \"%s\"", chardev);
        return false;
    }
    parts = g_strsplit(chardev + 5, ",", -1);
    for (int i = 1; parts[i]; i++) {
        if (!strcmp(parts[i], "server") || !strcmp(parts[i], "server=on")) {
            server = true;
        } else if (strcmp(parts[i], "server=off") && strcmp(parts[i], "wait=off") &&
                   strcmp(parts[i], "nowait") && strcmp(parts[i], "wait=on")) {
            error_setg(errp, "Failed to initialize device for qtest: \"%s\"",
                       chardev);
            return false;
        }
    }
    if (!*parts[0] || strlen(parts[0]) >= sizeof(sa.sun_path)) {
        error_setg(errp, "Failed to initialize device for qtest: \"%s\"", chardev);
        return false;
    }
    strcpy(sa.sun_path, parts[0]);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "qtest: cannot create socket");
        return false;
    }
    if (server) {
        unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
            error_setg_errno(errp, errno, "Failed to bind socket to %s", parts[0]);
            close(fd);
            return false;
        }
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        /* QEMU's -qtest unix:PATH is a client: the test listens first. */
        error_setg_errno(errp, errno, "Failed to connect to '%s'", parts[0]);
        close(fd);
        return false;
    }
    qts = g_new0(QTestServer, 1);
    qts->inbuf = g_string_new(NULL);
    qts->in_fd = qts->out_fd = -1;
    qts->listen_fd = -1;
    if (server) {
        qts->listen_fd = fd;
        qts->path = g_strdup(parts[0]);
        qts->listen_watch = g_unix_fd_add(fd, G_IO_IN, qtest_accept, NULL);
    } else {
        qtest_attach(fd, fd);
    }
    return true;
}

void qtest_server_cleanup(void)
{
    if (!qts) {
        return;
    }
    qtest_close_client();
    if (qts->listen_watch) {
        g_source_remove(qts->listen_watch);
    }
    if (qts->listen_fd >= 0) {
        close(qts->listen_fd);
    }
    if (qts->path) {
        unlink(qts->path);
        g_free(qts->path);
    }
    g_string_free(qts->inbuf, TRUE);
    g_clear_pointer(&qts, g_free);
}
