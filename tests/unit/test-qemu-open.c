/* Unit test: qemu_open_old's paths, /dev/fdset/N parsing and QEMU 7.2's error texts. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "monitor/monitor.h"

static void assert_open_error(const char *path, const char *want)
{
    Error *err = NULL;
    int fd = qemu_open_old(path, O_WRONLY | O_CREAT | O_TRUNC, S_IRUSR, &err);
    g_assert_cmpint(fd, ==, -1);
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, want);
    error_free(err);
}

static void test_fdset_paths(void)
{
    /* Texts verified with qemu-system-x86_64 7.2 through dump-guest-memory. */
    assert_open_error("/dev/fdset/x", "Could not open '/dev/fdset/x': Invalid argument");
    assert_open_error("/dev/fdset/", "Could not open '/dev/fdset/': Invalid argument");
    assert_open_error("/dev/fdset/-2",
                      "Could not open '/dev/fdset/-2': Invalid argument");
    assert_open_error("/dev/fdset/1x",
                      "Could not open '/dev/fdset/1x': Invalid argument");
    assert_open_error("/dev/fdset/7",
                      "Could not open '/dev/fdset/7': No such file or directory");
    assert_open_error("/dev/fdset/+3",
                      "Could not open '/dev/fdset/+3': No such file or directory");
    g_assert_cmpint(monitor_fdset_dup_fd_add(7, O_WRONLY), ==, -1);
}

static void test_plain_path(void)
{
    GError *gerr = NULL;
    g_autofree char *dir = g_dir_make_tmp("gd-open-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    g_autofree char *path = g_build_filename(dir, "out", NULL);
    g_autofree char *missing = g_build_filename(dir, "no", "out", NULL);
    g_autofree char *want = g_strdup_printf(
        "Could not open '%s': No such file or directory", missing);
    Error *err = NULL;

    assert_open_error(missing, want);
    int fd = qemu_open_old(path, O_WRONLY | O_CREAT | O_TRUNC, S_IRUSR, &err);
    g_assert_null(err);
    g_assert_cmpint(fd, >=, 0);
    /* Close-on-exec like every QEMU open, and the mode the caller asked for. */
    g_assert_cmpint(fcntl(fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
    struct stat st;
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, S_IRUSR);
    close(fd);
    g_unlink(path);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qemu-open/fdset-paths", test_fdset_paths);
    g_test_add_func("/qemu-open/plain-path", test_plain_path);
    return g_test_run();
}
