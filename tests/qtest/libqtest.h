/* libqtest: start the guestdump host and talk QMP, HMP and the qtest protocol to it. */
#ifndef TESTS_QTEST_LIBQTEST_H
#define TESTS_QTEST_LIBQTEST_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct QTestState QTestState;

/* Extra sockets qtest_init_full can add. */
enum {
    QTEST_WITH_QTEST = 1 << 0,  /* -qtest unix:<tmp>/qtest.sock (we listen) */
    QTEST_WITH_HMP   = 1 << 1,  /* -monitor unix:<tmp>/hmp.sock,server=on,wait=off */
    QTEST_NO_NEGOTIATE = 1 << 2,/* leave the QMP session before qmp_capabilities */
};

/*
 * Starts GUESTDUMP_BINARY with extra_args (shell-style words; "@TMP@" is
 * replaced by the test's temporary directory), connects to its QMP socket
 * (<tmp>/qmp.sock), checks the greeting and negotiates. Aborts the test on
 * any failure, with the host's stderr visible. QTEST_WRAPPER in the
 * environment ("valgrind --error-exitcode=9") is put in front of the host.
 */
QTestState *qtest_init(const char *extra_args);
QTestState *qtest_init_with_qtest(const char *extra_args);
QTestState *qtest_init_full(const char *extra_args, unsigned flags);

/*
 * Sends quit and waits for the host to exit (killing it after a timeout),
 * then removes the temporary directory. For a client from
 * qtest_qmp_connect_extra only the connection is closed.
 */
void qtest_quit(QTestState *s);
/* Waits up to timeout_ms for the host to exit; its wait status, or -1 on timeout. */
int qtest_wait_exit(QTestState *s, int timeout_ms);
/* Sends SIGKILL and reaps the host (for tests that leave it hanging on purpose). */
void qtest_kill(QTestState *s);

pid_t qtest_pid(QTestState *s);
const char *qtest_tmpdir(QTestState *s);
/* Path of the QMP socket, for tests that connect on their own. */
const char *qtest_qmp_socket_path(QTestState *s);
/* Open fds of the host (entries of /proc/PID/fd), or -1. */
int qtest_count_fds(QTestState *s);

/* The greeting object the host sent (borrowed). */
JsonObject *qtest_greeting(QTestState *s);

/*
 * Formats one JSON request with printf rules (quote strings yourself, see
 * qtest_json_str), sends it and returns the response object (events that
 * arrive first are queued). Free with json_object_unref.
 */
JsonObject *qtest_qmp(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* The same, with fds passed by SCM_RIGHTS in the same message. */
JsonObject *qtest_qmp_fds(QTestState *s, const int *fds, size_t nfds,
                          const char *fmt, ...) G_GNUC_PRINTF(4, 5);
/* Asserts there is a "return" and gives it (a new reference). */
JsonNode *qtest_qmp_assert_success_ref(QTestState *s, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
void qtest_qmp_assert_success(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Raw access: bytes as they are (for malformed input), and the next response. */
void qtest_qmp_send_raw(QTestState *s, const char *buf, size_t len);
JsonObject *qtest_qmp_receive(QTestState *s);
/* The exact bytes of the next line the host sent on QMP (events included). */
char *qtest_qmp_receive_line(QTestState *s);

/*
 * Waits for the event and returns it (queued events first; others stay
 * queued). Aborts after a generous timeout.
 */
JsonObject *qtest_qmp_event_wait(QTestState *s, const char *event);
/* A queued or already-arrived event, or NULL without waiting more than timeout_ms. */
JsonObject *qtest_qmp_event_poll(QTestState *s, const char *event, int timeout_ms);

/*
 * Closes this QMP connection (the host keeps running), and opens and
 * negotiates a new one.
 */
void qtest_qmp_disconnect(QTestState *s);
void qtest_qmp_reconnect(QTestState *s);

/* A second, negotiated QMP client of the same host. Free with qtest_quit. */
QTestState *qtest_qmp_connect_extra(QTestState *s);

/* human-monitor-command: the output text (g_free it). */
char *qtest_hmp(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* The raw HMP socket (QTEST_WITH_HMP): connects and returns the fd. */
int qtest_hmp_connect(QTestState *s);
/* Reads from an HMP fd until "(qemu) " ends the output; returns what came before. */
char *qtest_hmp_read_until_prompt(int fd);

/* "..." with JSON escapes, for building requests. g_free it. */
char *qtest_json_str(const char *s);

/* Asserts that rsp is a success ("return"), logging an error's text; frees rsp. */
void qtest_assert_ok(JsonObject *rsp);

/* query-status's "status" (g_free): "running", "paused", ... */
char *qtest_run_status(QTestState *s);

/* Convenience: the error class/desc of a response, or NULL. */
const char *qtest_error_class(JsonObject *rsp);
const char *qtest_error_desc(JsonObject *rsp);

/* ---------------------------------------------------------------------- */
/* qtest protocol (owned by the machine engineer; add the client side here) */
/* ---------------------------------------------------------------------- */

/*
 * With QTEST_WITH_QTEST the host connected to <tmp>/qtest.sock; this is
 * that connection. The line transport below is what protocol helpers
 * (readq, writeq, memread, outl, ...) build on.
 */
int qtest_qtest_fd(QTestState *s);
/* Sends one formatted line (add the "\n" yourself). */
void qtest_sendf(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* The next line from the qtest connection, without its "\n". g_free it. */
char *qtest_recv_line(QTestState *s);

/*
 * qtest protocol client (machine engineer). Each call sends one command and
 * checks the reply starts with "OK"; a FAIL or ERR aborts the test.
 */
uint8_t qtest_readb(QTestState *s, uint64_t addr);
uint16_t qtest_readw(QTestState *s, uint64_t addr);
uint32_t qtest_readl(QTestState *s, uint64_t addr);
uint64_t qtest_readq(QTestState *s, uint64_t addr);
void qtest_writeb(QTestState *s, uint64_t addr, uint8_t value);
void qtest_writew(QTestState *s, uint64_t addr, uint16_t value);
void qtest_writel(QTestState *s, uint64_t addr, uint32_t value);
void qtest_writeq(QTestState *s, uint64_t addr, uint64_t value);
/* "read"/"write": hex-encoded transfers; "b64read"/"b64write": base64. */
void qtest_memread(QTestState *s, uint64_t addr, void *data, size_t size);
void qtest_memwrite(QTestState *s, uint64_t addr, const void *data, size_t size);
void qtest_bufread(QTestState *s, uint64_t addr, void *data, size_t size);
void qtest_bufwrite(QTestState *s, uint64_t addr, const void *data, size_t size);
void qtest_memset(QTestState *s, uint64_t addr, uint8_t pattern, size_t size);
uint8_t qtest_inb(QTestState *s, uint16_t port);
uint16_t qtest_inw(QTestState *s, uint16_t port);
uint32_t qtest_inl(QTestState *s, uint16_t port);
void qtest_outb(QTestState *s, uint16_t port, uint8_t value);
void qtest_outw(QTestState *s, uint16_t port, uint16_t value);
void qtest_outl(QTestState *s, uint16_t port, uint32_t value);
/* guestdump extension: vCPU registers by name (see qapi/machine.json). */
void qtest_set_reg(QTestState *s, int cpu, const char *name, uint64_t value);
uint64_t qtest_get_reg(QTestState *s, int cpu, const char *name);
/* Sends a raw command line (no "\n") and returns the whole reply line. */
char *qtest_command(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#endif
