/* Tests of libqtest itself: a test that dies must take its host with it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "libqtest.h"

/* Where the aborting subprocess leaves its host's pid for the parent test. */
static char *pid_file_for(pid_t test_pid)
{
    return g_strdup_printf("%s/guestdump-libqtest-%d.pid", g_get_tmp_dir(),
                           (int)test_pid);
}

/* Gone, or a zombie waiting for whoever inherited it: either way no longer running. */
static bool host_is_gone(pid_t pid)
{
    g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *stat = NULL;

    if (kill(pid, 0) < 0 && errno == ESRCH) {
        return true;
    }
    if (!g_file_get_contents(stat_path, &stat, NULL, NULL)) {
        return true;
    }
    const char *end = strrchr(stat, ')');
    return end && end[1] == ' ' && (end[2] == 'Z' || end[2] == 'X');
}

static void aborting_test(void)
{
    g_autofree char *pid_file = pid_file_for(getppid());
    QTestState *s = qtest_init("-S");
    g_autofree char *pid = g_strdup_printf("%d", (int)qtest_pid(s));

    g_assert_true(g_file_set_contents(pid_file, pid, -1, NULL));
    /* As an assertion failing mid-test does: no qtest_quit. */
    abort();
}

static void test_host_dies_with_aborting_test(void)
{
    if (g_test_subprocess()) {
        aborting_test();
        return;
    }
    g_autofree char *pid_file = pid_file_for(getpid());
    g_autofree char *text = NULL;

    g_unlink(pid_file);
    g_test_trap_subprocess("/libqtest/host-dies-with-aborting-test", 60 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_assert_true(g_file_get_contents(pid_file, &text, NULL, NULL));
    g_unlink(pid_file);
    pid_t host = atoi(text);
    g_assert_cmpint(host, >, 1);

    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!host_is_gone(host)) {
        if (g_get_monotonic_time() > deadline) {
            kill(host, SIGKILL);
            g_assert_not_reached();
        }
        g_usleep(10 * 1000);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/libqtest/host-dies-with-aborting-test",
                    test_host_dies_with_aborting_test);
    return g_test_run();
}
