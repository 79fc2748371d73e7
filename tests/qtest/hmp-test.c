/* HMP tests: commands through human-monitor-command and through a -monitor socket. */
#include "libqtest.h"

#include <string.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config-host.h"

static void assert_hmp(QTestState *s, const char *line, const char *want)
{
    g_autofree char *out = qtest_hmp(s, "%s", line);
    g_assert_cmpstr(out, ==, want);
}

static void test_hmp_via_qmp(void)
{
    QTestState *s = qtest_init("-S -m 32");

    /* Texts as QEMU 7.2 prints them, CR LF included. */
    assert_hmp(s, "", "");
    assert_hmp(s, "info version", "7.2.0guestdump " GUESTDUMP_VERSION "\r\n");
    assert_hmp(s, "info status", "VM status: paused (prelaunch)\r\n");
    assert_hmp(s, "help stop", "stop|s  -- stop emulation\r\n");
    assert_hmp(s, "help info status",
               "info status  -- show the current VM status (running|paused)\r\n");
    assert_hmp(s, "help nonexist", "unknown command: 'nonexist'\r\n");
    assert_hmp(s, "foo", "unknown command: 'foo'\r\n");
    assert_hmp(s, "info foo", "unknown command: 'info foo'\r\n");
    assert_hmp(s, "stop extra", "stop|s: extraneous characters at the end of line\r\n"
                                "Try \"help stop\" for more information\r\n");
    assert_hmp(s, "info status extra",
               "status: extraneous characters at the end of line\r\n"
               "Try \"help info status\" for more information\r\n");
    assert_hmp(s, "getfd", "getfd: string expected\r\n"
                           "Try \"help getfd\" for more information\r\n");
    assert_hmp(s, "getfd x", "Error: No file descriptor supplied via SCM_RIGHTS\r\n");

    g_autofree char *help = qtest_hmp(s, "help");
    g_assert_nonnull(strstr(help, "cont|c  -- resume emulation\r\n"));
    g_assert_nonnull(strstr(help, "info [subcommand] -- show various information about "
                                  "the system state\r\n"));
    g_autofree char *info = qtest_hmp(s, "info");
    g_assert_nonnull(strstr(info, "info version  -- show the version of QEMU\r\n"));

    /* Aliases, spacing, and the events the commands cause. */
    assert_hmp(s, "  c  ", "");
    assert_hmp(s, "info status", "VM status: running\r\n");
    JsonObject *ev = qtest_qmp_event_wait(s, "RESUME");
    json_object_unref(ev);
    assert_hmp(s, "stop", "");
    assert_hmp(s, "info status", "VM status: paused\r\n");
    ev = qtest_qmp_event_wait(s, "STOP");
    json_object_unref(ev);

    JsonObject *rsp = qtest_qmp(s, "{\"execute\": \"human-monitor-command\", "
                                   "\"arguments\": {\"command-line\": \"info status\", "
                                   "\"cpu-index\": 99}}");
    g_assert_cmpstr(qtest_error_desc(rsp), ==,
                    "Parameter 'cpu-index' expects a CPU number");
    json_object_unref(rsp);
    qtest_quit(s);
}

static void test_hmp_socket(void)
{
    QTestState *s = qtest_init_full("-S -m 32", QTEST_WITH_HMP);
    int fd = qtest_hmp_connect(s);

    g_autofree char *banner = qtest_hmp_read_until_prompt(fd);
    /* QEMU's banner, naming us (docs/compat.md, monitor). */
    g_assert_cmpstr(banner, ==, "QEMU 7.2.0 monitor (guestdump " GUESTDUMP_VERSION
                                ") - type 'help' for more information\r\n");

    const char cmd1[] = "info status\n";
    g_assert_cmpint(write(fd, cmd1, strlen(cmd1)), ==, strlen(cmd1));
    g_autofree char *out1 = qtest_hmp_read_until_prompt(fd);
    g_assert_cmpstr(out1, ==, "VM status: paused (prelaunch)\r\n");

    const char cmd2[] = "cont\r\ninfo status\n";
    g_assert_cmpint(write(fd, cmd2, strlen(cmd2)), ==, strlen(cmd2));
    g_autofree char *out2 = qtest_hmp_read_until_prompt(fd);
    g_assert_cmpstr(out2, ==, "");
    g_autofree char *out3 = qtest_hmp_read_until_prompt(fd);
    g_assert_cmpstr(out3, ==, "VM status: running\r\n");
    JsonObject *ev = qtest_qmp_event_wait(s, "RESUME");
    json_object_unref(ev);

    const char cmd3[] = "dump-guest-memory-nonexistent\n";
    g_assert_cmpint(write(fd, cmd3, strlen(cmd3)), ==, strlen(cmd3));
    g_autofree char *out4 = qtest_hmp_read_until_prompt(fd);
    g_assert_cmpstr(out4, ==, "unknown command: 'dump-guest-memory-nonexistent'\r\n");

    /* quit from HMP ends the host cleanly. */
    const char cmd4[] = "quit\n";
    g_assert_cmpint(write(fd, cmd4, strlen(cmd4)), ==, strlen(cmd4));
    ev = qtest_qmp_event_wait(s, "SHUTDOWN");
    json_object_unref(ev);
    int status = qtest_wait_exit(s, 30000);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_autofree char *hmp_path = g_build_filename(qtest_tmpdir(s), "hmp.sock", NULL);
    g_assert_false(g_file_test(hmp_path, G_FILE_TEST_EXISTS));
    close(fd);
    qtest_quit(s);
}

/* Where our HMP differs from 7.2 (docs/compat.md, "QMP and HMP monitor"). */
static void test_hmp_deviations(void)
{
    QTestState *s = qtest_init("-S -m 32");

    /* 7.2 prints this on its stderr and then says "filename expected". */
    assert_hmp(s, "dump-guest-memory \"/nonexistent/a\\qb\"",
               "unsupported escape code: '\\q'\r\n"
               "Try \"help dump-guest-memory\" for more information\r\n");
    /* No register names in expressions. */
    assert_hmp(s, "dump-guest-memory /nonexistent/x $eax 4096",
               "invalid char '$' in expression\r\n"
               "Try \"help dump-guest-memory\" for more information\r\n");
    qtest_quit(s);
}

static void test_hmp_chardev_readline(void)
{
    /* -chardev + -mon without mode: readline, i.e. HMP. */
    QTestState *s = qtest_init("-S -chardev socket,id=h,path=@TMP@/h.sock,server=on,"
                               "wait=off -mon chardev=h");
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "h.sock", NULL);
    int fd;
    {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    }
    g_autofree char *banner = qtest_hmp_read_until_prompt(fd);
    const char cmd[] = "help quit\n";
    g_assert_cmpint(write(fd, cmd, strlen(cmd)), ==, strlen(cmd));
    g_autofree char *out = qtest_hmp_read_until_prompt(fd);
    g_assert_cmpstr(out, ==, "quit|q  -- quit the emulator\r\n");
    close(fd);
    qtest_quit(s);
}

static void test_hmp_stdio(void)
{
    const char *argv[] = { GUESTDUMP_BINARY, "-S", "-m", "32", "-monitor", "stdio",
                           NULL };
    const char input[] = "info status\nq\n";
    GError *err = NULL;
    GPid pid;
    int in_fd, out_fd, status;

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
    g_assert_true(g_str_has_suffix(all->str, "(qemu) VM status: paused (prelaunch)\r\n"
                                   "(qemu) "));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_string_free(all, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hmp/via-qmp", test_hmp_via_qmp);
    g_test_add_func("/hmp/socket", test_hmp_socket);
    g_test_add_func("/hmp/deviations", test_hmp_deviations);
    g_test_add_func("/hmp/chardev-readline", test_hmp_chardev_readline);
    g_test_add_func("/hmp/stdio", test_hmp_stdio);
    return g_test_run();
}
