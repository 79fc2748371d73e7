/* Unit tests of the write path's speed-ups: pipe size, huge-page RAM, sparse ELF. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "sysemu/dump.h"
#include "sysemu/physmem.h"

#define MiB (1u << 20)

static long proc_long(const char *path)
{
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return -1;
    }
    return strtol(text, NULL, 10);
}

/* A stream sink on a pipe grows it to 1 MiB (or the system's limit). */
static void test_pipe_enlarged(void)
{
    long max = proc_long("/proc/sys/fs/pipe-max-size");
    int fds[2];
    DumpOutput *out;

    if (max <= 0) {
        g_test_skip("no /proc/sys/fs/pipe-max-size");
        return;
    }
    g_assert_cmpint(pipe(fds), ==, 0);
    g_assert_cmpint(fcntl(fds[1], F_GETPIPE_SZ), <, MIN(max, (long)MiB));
    out = dump_output_new_fd(fds[1], false);
    g_assert_cmpint(fcntl(fds[0], F_GETPIPE_SZ), ==, MIN(max, (long)MiB));
    g_assert_true(dump_output_write(out, "x", 1));
    g_assert_true(dump_output_finish(out));
    close(fds[0]);
}

/* A pipe the client made bigger than 1 MiB is left as it is. */
static void test_pipe_not_shrunk(void)
{
    long max = proc_long("/proc/sys/fs/pipe-max-size");
    int fds[2];
    int big;

    if (max < 2 * (long)MiB) {
        g_test_skip("pipe-max-size below 2 MiB");
        return;
    }
    g_assert_cmpint(pipe(fds), ==, 0);
    big = fcntl(fds[1], F_SETPIPE_SZ, 2 * MiB);
    if (big < 0) {
        g_test_skip("cannot make a 2 MiB pipe here");
        close(fds[0]);
        close(fds[1]);
        return;
    }
    dump_output_free(dump_output_new_fd(fds[1], false));
    g_assert_cmpint(fcntl(fds[0], F_GETPIPE_SZ), ==, big);
    close(fds[0]);
}

/* The /proc/self/smaps entry that starts at addr, or NULL. */
static char *smaps_entry(const void *addr)
{
    g_autofree char *text = NULL;
    g_autofree char *start = g_strdup_printf("%lx-", (unsigned long)addr);
    char **lines;
    GString *entry = NULL;

    g_assert_true(g_file_get_contents("/proc/self/smaps", &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long lo, hi;
        /* "Anonymous:" starts with a hex digit too, but has no range. */
        bool header = sscanf(*l, "%lx-%lx ", &lo, &hi) == 2;

        if (header && entry) {
            break;
        }
        if (header && g_str_has_prefix(*l, start)) {
            entry = g_string_new(NULL);
        }
        if (entry) {
            g_string_append_printf(entry, "%s\n", *l);
        }
    }
    g_strfreev(lines);
    return entry ? g_string_free(entry, FALSE) : NULL;
}

/*
 * Guest RAM is 2 MiB aligned, advised MADV_HUGEPAGE ("hg" in VmFlags),
 * exactly as long as the block (no leaked alignment slack), and unmapped
 * again by physmem_reset.
 */
static void test_ram_huge_pages(void)
{
    g_autoptr(Error) err = NULL;
    const uint64_t size = 6 * MiB + 4096;
    const RAMBlock *rb;
    g_autofree char *entry = NULL;
    g_autofree char *range = NULL;
    uint8_t *host;
    unsigned char vec;

    physmem_reset();
    rb = physmem_add_block("test.ram", 0, size, NULL, false, 0, &err);
    if (!rb) {
        g_error("physmem_add_block: %s", error_get_pretty(err));
    }
    host = rb->host;
    g_assert_cmpuint((uintptr_t)host % (2 * MiB), ==, 0);
    host[0] = 1;
    host[size - 1] = 2;
    entry = smaps_entry(host);
    g_assert_nonnull(entry);
    range = g_strdup_printf("%lx-%lx ", (unsigned long)host,
                            (unsigned long)(host + size));
    g_assert_true(g_str_has_prefix(entry, range));
#ifdef MADV_HUGEPAGE
    g_assert_nonnull(strstr(entry, "VmFlags:"));
    g_assert_nonnull(strstr(strstr(entry, "VmFlags:"), " hg"));
#endif
    physmem_reset();
    /* mincore fails with ENOMEM on an unmapped range. */
    g_assert_cmpint(mincore(host, 4096, &vec), ==, -1);
    g_assert_cmpint(errno, ==, ENOMEM);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/write-path/pipe-enlarged", test_pipe_enlarged);
    g_test_add_func("/write-path/pipe-not-shrunk", test_pipe_not_shrunk);
    g_test_add_func("/write-path/ram-huge-pages", test_ram_huge_pages);
    return g_test_run();
}
