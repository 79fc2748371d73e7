/* Unit test: an fd set whose dup is in use outlives the last monitor client, as QEMU. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "monitor/chardev.h"
#include "qmp-unit-client.h"
#include "monitor/monitor.h"
#include "qapi-commands.h"
#include "sysemu/runstate.h"

/* Connected and negotiated, greeting consumed. */
static QmpUnitClient client_connect(const char *path)
{
    QmpUnitClient c = qmp_unit_client_connect(path);

    g_free(qmp_unit_client_line(&c));           /* greeting */
    qmp_unit_client_negotiate(&c);
    return c;
}

static int fdset_count(void)
{
    FdsetInfoList *sets = qmp_query_fdsets(NULL);
    int n = 0;

    for (FdsetInfoList *l = sets; l; l = l->next) {
        n++;
    }
    qapi_free_FdsetInfoList(sets);
    return n;
}

/* The host-side fd number in an add-fd reply. */
static int reply_fd(const char *reply)
{
    const char *p = strstr(reply, "\"fd\": ");

    g_assert_nonnull(p);
    return atoi(p + strlen("\"fd\": "));
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_dup_keeps_set(void)
{
    GError *gerr = NULL;
    Error *err = NULL;
    g_autofree char *dir = g_dir_make_tmp("gd-fdsets-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", path);
    g_autofree char *file = g_build_filename(dir, "out", NULL);

    g_assert_true(g_main_context_acquire(NULL));
    vm_start();     /* QEMU keeps every set while the guest is paused */
    g_assert_true(monitor_add_qmp(spec, &err));
    g_assert_true(monitor_start(&err));

    /* Two sets: 0 will be in use by a "dump", 1 not. */
    int w = open(file, O_WRONLY | O_CREAT, 0600);
    g_assert_cmpint(w, >=, 0);
    QmpUnitClient c = client_connect(path);
    qmp_unit_client_send(&c, "{\"execute\": \"add-fd\", \"arguments\": {\"fdset-id\": 0}}", w);
    g_autofree char *r0 = qmp_unit_client_line(&c);
    qmp_unit_client_send(&c, "{\"execute\": \"add-fd\", \"arguments\": {\"fdset-id\": 1}}", w);
    g_autofree char *r1 = qmp_unit_client_line(&c);
    close(w);
    g_assert_cmpint(fdset_count(), ==, 2);
    int set_fd0 = reply_fd(r0), set_fd1 = reply_fd(r1);

    int dup = qemu_open_old("/dev/fdset/0", O_WRONLY | O_CREAT | O_TRUNC, 0600, &err);
    g_assert_null(err);
    g_assert_cmpint(dup, >=, 0);

    /* The last client leaves: set 1 goes, set 0 stays for its dup. */
    qmp_unit_client_close(&c);
    g_assert_cmpint(fdset_count(), ==, 1);
    g_assert_true(fd_is_open(set_fd0));
    g_assert_false(fd_is_open(set_fd1));

    /* The dup is closed with nobody connected: now set 0 goes too. */
    close(dup);
    monitor_fdset_dup_fd_remove(dup);
    g_assert_cmpint(fdset_count(), ==, 0);
    g_assert_false(fd_is_open(set_fd0));

    /* With a client connected, closing the dup leaves the set alone. */
    c = client_connect(path);
    w = open(file, O_WRONLY);
    qmp_unit_client_send(&c, "{\"execute\": \"add-fd\", \"arguments\": {\"fdset-id\": 3}}", w);
    g_free(qmp_unit_client_line(&c));
    close(w);
    dup = qemu_open_old("/dev/fdset/3", O_WRONLY | O_CREAT | O_TRUNC, 0600, &err);
    g_assert_cmpint(dup, >=, 0);
    close(dup);
    monitor_fdset_dup_fd_remove(dup);
    g_assert_cmpint(fdset_count(), ==, 1);
    /* An fd that never came from a set changes nothing. */
    monitor_fdset_dup_fd_remove(12345);
    g_assert_cmpint(fdset_count(), ==, 1);
    qmp_unit_client_close(&c);
    g_assert_cmpint(fdset_count(), ==, 0);

    monitor_cleanup();
    g_unlink(file);
    g_rmdir(dir);
    g_main_context_release(NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fdsets/dup-keeps-set", test_dup_keeps_set);
    return g_test_run();
}
