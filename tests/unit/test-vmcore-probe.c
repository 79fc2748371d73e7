/* Unit tests of input recognition by content (system/vmcore-probe.c). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "system/vmcore-probe.h"

static VmcoreKind probe(const void *bytes, size_t len)
{
    return vmcore_probe_bytes(bytes, len);
}

static void test_probe_bytes(void)
{
    uint8_t elf[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
    uint8_t flat[16] = "makedumpfile";

    elf[16] = 4;                                    /* ET_CORE */
    g_assert_cmpint(probe(elf, sizeof(elf)), ==, VMCORE_KIND_ELF_CORE);
    elf[16] = 2;                                    /* ET_EXEC */
    g_assert_cmpint(probe(elf, sizeof(elf)), ==, VMCORE_KIND_ELF_OTHER);
    elf[16] = 1;                                    /* ET_REL */
    g_assert_cmpint(probe(elf, sizeof(elf)), ==, VMCORE_KIND_ELF_OTHER);
    /* too short to have e_type: a core to be refused as truncated */
    g_assert_cmpint(probe(elf, 7), ==, VMCORE_KIND_ELF_CORE);
    g_assert_cmpint(probe("KDUMP   \6\0\0\0", 12), ==, VMCORE_KIND_KDUMP_RAW);
    g_assert_cmpint(probe("KDUMP  ", 7), ==, VMCORE_KIND_UNKNOWN);
    g_assert_cmpint(probe(flat, sizeof(flat)), ==, VMCORE_KIND_KDUMP_FLAT);
    g_assert_cmpint(probe("makedumpfil", 11), ==, VMCORE_KIND_UNKNOWN);
    g_assert_cmpint(probe("QEVM\0\0\0\3", 8), ==, VMCORE_KIND_QEMU_MIGRATION);
    g_assert_cmpint(probe("PAGEDUMP", 8), ==, VMCORE_KIND_WINDOWS_DUMP);
    g_assert_cmpint(probe("PAGEDU64", 8), ==, VMCORE_KIND_WINDOWS_DUMP);
    g_assert_cmpint(probe("PAGEDU32", 8), ==, VMCORE_KIND_UNKNOWN);
    g_assert_cmpint(probe("", 0), ==, VMCORE_KIND_EMPTY);
    g_assert_cmpint(probe("hello", 5), ==, VMCORE_KIND_UNKNOWN);
}

static void test_messages(void)
{
    for (int k = VMCORE_KIND_ELF_CORE; k <= VMCORE_KIND_UNKNOWN; k++) {
        const char *m = vmcore_kind_message(k);
        g_assert_nonnull(m);
        g_assert_null(strchr(m, '\n'));
        g_assert_cmpuint(strlen(m), >, 5);
        g_assert_cmpint(vmcore_kind_readable(k), ==,
                        k == VMCORE_KIND_ELF_CORE || k == VMCORE_KIND_KDUMP_RAW ||
                        k == VMCORE_KIND_KDUMP_FLAT);
    }
    g_assert_nonnull(strstr(vmcore_kind_message(VMCORE_KIND_QEMU_MIGRATION), "savevm"));
    g_assert_nonnull(strstr(vmcore_kind_message(VMCORE_KIND_WINDOWS_DUMP), "Windows"));
    g_assert_nonnull(strstr(vmcore_kind_message(VMCORE_KIND_ELF_OTHER), "ET_CORE"));
    g_assert_nonnull(strstr(vmcore_kind_message(VMCORE_KIND_NOT_REGULAR),
                            "not a regular file"));
}

static void test_probe_fd(void)
{
    g_autofree char *dir = g_dir_make_tmp("probe-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "f", NULL);
    g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
    int fd;

    g_assert_true(g_file_set_contents(path, "KDUMP   rest", 12, NULL));
    fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(lseek(fd, 5, SEEK_SET), ==, 5);
    g_assert_cmpint(vmcore_probe_fd(fd), ==, VMCORE_KIND_KDUMP_RAW);
    g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 5);     /* the offset is kept */
    close(fd);

    g_assert_true(g_file_set_contents(path, "", 0, NULL));
    fd = open(path, O_RDONLY);
    g_assert_cmpint(vmcore_probe_fd(fd), ==, VMCORE_KIND_EMPTY);
    close(fd);

    fd = open(dir, O_RDONLY | O_DIRECTORY);
    g_assert_cmpint(vmcore_probe_fd(fd), ==, VMCORE_KIND_NOT_REGULAR);
    close(fd);
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    fd = open(fifo, O_RDONLY | O_NONBLOCK);
    g_assert_cmpint(vmcore_probe_fd(fd), ==, VMCORE_KIND_NOT_REGULAR);
    close(fd);

    unlink(fifo);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmcore-probe/bytes", test_probe_bytes);
    g_test_add_func("/vmcore-probe/messages", test_messages);
    g_test_add_func("/vmcore-probe/fd", test_probe_fd);
    return g_test_run();
}
