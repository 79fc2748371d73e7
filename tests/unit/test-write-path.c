/* Unit tests of the write path's speed-ups: pipe size, huge-page RAM, sparse ELF. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "sysemu/dump-core.h"
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

/* Writes a /proc/sys file in place (g_file_set_contents would rename over it). */
static bool write_sysctl(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    bool ok;

    if (!f) {
        return false;
    }
    ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
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

    /*
     * A 2 MiB pipe needs CAP_SYS_RESOURCE or pipe-max-size >= 2 MiB. Root
     * without the capability (a container) may still raise the sysctl for
     * the moment it takes to make the pipe; the old value goes back at once.
     */
    g_assert_cmpint(pipe(fds), ==, 0);
    big = fcntl(fds[1], F_SETPIPE_SZ, 2 * MiB);
    if (big < 0 && max > 0 && max < 2 * (long)MiB) {
        g_autofree char *two = g_strdup_printf("%ld\n", (long)(2 * MiB));
        g_autofree char *old = g_strdup_printf("%ld\n", max);

        if (write_sysctl("/proc/sys/fs/pipe-max-size", two)) {
            big = fcntl(fds[1], F_SETPIPE_SZ, 2 * MiB);
            g_assert_true(write_sysctl("/proc/sys/fs/pipe-max-size", old));
        }
    }
    if (big < 0) {
        g_autofree char *why =
            g_strdup_printf("cannot make a 2 MiB pipe here (pipe-max-size %ld, "
                            "no CAP_SYS_RESOURCE, not root)", max);
        g_test_skip(why);
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

static char *tmp_file(const char *name)
{
    g_autofree char *dir = g_dir_make_tmp("write-path-XXXXXX", NULL);

    g_assert_nonnull(dir);
    return g_build_filename(dir, name, NULL);
}

static void remove_tmp(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);

    unlink(path);
    rmdir(dir);
}

/*
 * RAM-like: MiB by MiB (the hole unit), mixed pages, zeros, zeros but for
 * one byte, zeros, mixed, and a zero tail of two MiB.
 */
static uint8_t *ram_like(size_t len)
{
    static const char plan[] = "mz1zmzz";
    uint8_t *buf = g_malloc0(len);

    g_assert_cmpuint(len, ==, (sizeof(plan) - 1) * MiB);
    for (size_t m = 0; m < sizeof(plan) - 1; m++) {
        uint8_t *p = buf + m * MiB;

        if (plan[m] == '1') {
            p[MiB / 2 + 17] = 1;
        }
        for (size_t i = 0; plan[m] == 'm' && i < MiB; i += 4096) {
            if ((i / 4096) % 3 == 1) {
                memset(p + i, 0x5a, 4096);
            }
        }
    }
    return buf;
}

/* The offset of the first hole, or -1 where the filesystem reports none. */
static off_t first_hole(int fd, off_t size)
{
    off_t h = lseek(fd, 0, SEEK_HOLE);

    return h >= 0 && h < size ? h : -1;
}

/*
 * An empty file written sequentially (file: after O_TRUNC) gets holes for
 * zero blocks, reads back byte for byte, has the full size although it ends
 * in zeros, and its offset ends where sequential writes would leave it.
 */
static void test_sparse_file(void)
{
    g_autofree char *path = tmp_file("sparse.elf");
    const size_t len = 7 * MiB;
    g_autofree uint8_t *buf = ram_like(len);
    g_autofree gchar *back = NULL;
    gsize back_len;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int keep = dup(fd);
    DumpOutput *out = dump_output_new_fd(fd, false);
    struct stat st;

    /* 100 bytes of header first: RAM is not block-aligned in the file. */
    g_assert_true(dump_output_write(out, "headers...", 10));
    g_assert_true(dump_output_write(out, buf, 90));
    g_assert_true(dump_output_write(out, buf, len));
    g_assert_true(dump_output_finish(out));
    g_assert_cmpint(lseek(keep, 0, SEEK_CUR), ==, 100 + len);
    g_assert_cmpint(fstat(keep, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 100 + len);
    g_assert_true(g_file_get_contents(path, &back, &back_len, NULL));
    g_assert_cmpmem(back, 10, "headers...", 10);
    g_assert_cmpmem(back + 10, 90, buf, 90);
    g_assert_cmpmem(back + 100, len, buf, len);
    if (first_hole(keep, st.st_size) < 0) {
        g_test_skip("this filesystem does not report holes");
    } else {
        /*
         * RAM starts 100 bytes into the file, so of its 1 MiB blocks those
         * at file offsets 2, 4 and 6 MiB are zero: 3 of 7 MiB are holes.
         */
        g_assert_cmpint(st.st_blocks * 512, <=, 4 * (off_t)MiB + 64 * 1024);
        g_assert_cmpint(st.st_blocks * 512, >=, 3 * (off_t)MiB);
    }
    close(keep);
    remove_tmp(path);
}

/*
 * A file that already has bytes (fd: of an old file, as QEMU never
 * truncates it) is overwritten in full: zeros must replace what was there.
 */
static void test_not_sparse_over_data(void)
{
    g_autofree char *path = tmp_file("old.elf");
    const size_t len = 2 * MiB;
    g_autofree uint8_t *old = g_malloc(2 * len);
    g_autofree uint8_t *zero = g_malloc0(len);
    g_autofree gchar *back = NULL;
    gsize back_len;
    DumpOutput *out;
    int fd;

    memset(old, 0xee, 2 * len);
    g_assert_true(g_file_set_contents(path, (char *)old, 2 * len, NULL));
    fd = open(path, O_WRONLY);
    out = dump_output_new_fd(fd, false);
    g_assert_true(dump_output_write(out, zero, len));
    g_assert_true(dump_output_finish(out));
    g_assert_true(g_file_get_contents(path, &back, &back_len, NULL));
    g_assert_cmpuint(back_len, ==, 2 * len);
    g_assert_cmpmem(back, len, zero, len);
    g_assert_cmpmem(back + len, len, old, len);
    remove_tmp(path);
}

/* O_APPEND ignores offsets, so such a file is written plainly, zeros and all. */
static void test_not_sparse_append(void)
{
    g_autofree char *path = tmp_file("append.elf");
    const size_t len = 2 * MiB;
    g_autofree uint8_t *zero = g_malloc0(len);
    g_autofree gchar *back = NULL;
    gsize back_len;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    DumpOutput *out = dump_output_new_fd(fd, false);

    g_assert_true(dump_output_write(out, "A", 1));
    g_assert_true(dump_output_write(out, zero, len));
    g_assert_true(dump_output_write(out, "B", 1));
    g_assert_true(dump_output_finish(out));
    g_assert_true(g_file_get_contents(path, &back, &back_len, NULL));
    g_assert_cmpuint(back_len, ==, len + 2);
    g_assert_cmpint(back[0], ==, 'A');
    g_assert_cmpmem(back + 1, len, zero, len);
    g_assert_cmpint(back[len + 1], ==, 'B');
    remove_tmp(path);
}

/* Flattened records keep their zeros: the stream under them is not sparse. */
static void test_flattened_not_sparse(void)
{
    g_autofree char *path = tmp_file("flat.kdump");
    const size_t len = 2 * MiB;
    g_autofree uint8_t *zero = g_malloc0(len);
    g_autoptr(Error) err = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int keep = dup(fd);
    DumpOutput *out = dump_output_new_flattened(dump_output_new_fd(fd, false), &err);
    struct stat st;

    g_assert_nonnull(out);
    g_assert_true(dump_output_pwrite(out, zero, len, 0));
    g_assert_true(dump_output_finish(out));
    g_assert_cmpint(fstat(keep, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 4096 + 16 + len + 16);
    g_assert_cmpint(first_hole(keep, st.st_size), ==, -1);
    close(keep);
    remove_tmp(path);
}

/* An ELF dump of one RAM block into fd; returns the ELF's size. */
static uint64_t elf_dump_to(int fd, uint8_t *ram, uint64_t ram_size)
{
    g_autoptr(Error) err = NULL;
    DumpGuestBlock block = { 0, ram_size, ram };
    DumpPlan s = { 0 };
    DumpJob job = { .plan = &s };
    bool ok;

    s.guest_phys_blocks.num = 1;
    s.guest_phys_blocks.blocks = &block;
    s.dump_info = (DumpArchInfo){ .d_machine = EM_X86_64, .d_endian = ELFDATA2LSB,
                                  .d_class = ELFCLASS64, .page_size = 4096 };
    s.list = dump_mapping_list_new();
    s.total_size = ram_size;
    atomic_store(&job.total_size, ram_size);
    job.out = dump_output_new_fd(fd, false);
    ok = dump_elf_writer.prepare(&job, &err) && dump_elf_writer.write(&job, &err);
    dump_elf_writer.cleanup(&job);
    if (!ok) {
        g_error("ELF dump: %s", error_get_pretty(err));
    }
    g_assert_true(dump_output_finish(job.out));
    dump_mapping_list_free(s.list);
    return ram_size + 64 + 56 + 2 * 64 + sizeof("\0.shstrtab");
}

/*
 * The ELF writer's RAM chunks end on file-aligned boundaries: a 16 MiB guest
 * that is zero but for one page leaves all but two of its 1 MiB file blocks
 * as holes (chunks cut at block edges would write a quarter of them), and
 * reads back exactly as the same dump written in full over an old file.
 */
static void test_elf_zero_ram_is_sparse(void)
{
    const uint64_t ram_size = 16 * MiB;
    g_autofree uint8_t *ram = g_malloc0(ram_size);
    g_autofree char *sparse = tmp_file("zero-ram.elf");
    g_autofree char *full = tmp_file("old.elf");
    g_autofree uint8_t *old = g_malloc(ram_size + 2 * MiB);
    g_autofree gchar *a = NULL, *b = NULL;
    gsize alen, blen;
    uint64_t size;
    struct stat st;
    int fd;

    memset(ram + 5 * MiB + 4096, 0x42, 4096);
    fd = open(sparse, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size = elf_dump_to(fd, ram, ram_size);
    memset(old, 0xee, ram_size + 2 * MiB);
    g_assert_true(g_file_set_contents(full, (char *)old, ram_size + 2 * MiB, NULL));
    g_assert_cmpuint(elf_dump_to(open(full, O_WRONLY), ram, ram_size), ==, size);

    g_assert_true(g_file_get_contents(sparse, &a, &alen, NULL));
    g_assert_true(g_file_get_contents(full, &b, &blen, NULL));
    g_assert_cmpuint(alen, ==, size);
    g_assert_cmpuint(blen, ==, ram_size + 2 * MiB);
    g_assert_cmpmem(a, alen, b, size);
    g_assert_cmpint(stat(sparse, &st), ==, 0);
    fd = open(sparse, O_RDONLY);
    if (first_hole(fd, st.st_size) < 0) {
        g_test_skip("this filesystem does not report holes");
    } else {
        /* The headers' block and the block with the page. */
        g_assert_cmpint(st.st_blocks * 512, <=, 2 * (off_t)MiB + 64 * 1024);
    }
    close(fd);
    remove_tmp(sparse);
    remove_tmp(full);
}

static gpointer drain(gpointer data)
{
    int fd = GPOINTER_TO_INT(data);
    GByteArray *got = g_byte_array_new();
    uint8_t buf[65536];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_byte_array_append(got, buf, n);
    }
    close(fd);
    return got;
}

/*
 * Into a pipe, long zero runs are vmspliced from the zero page: the reader
 * gets exactly the bytes of the same ELF written to a file.
 */
static void test_elf_pipe_zero_splice(void)
{
    const uint64_t ram_size = 8 * MiB;
    g_autofree uint8_t *ram = g_malloc0(ram_size);
    g_autofree char *path = tmp_file("ref.elf");
    g_autofree gchar *ref = NULL;
    gsize ref_len;
    GByteArray *got;
    GThread *reader;
    int fds[2];

    /* Zero runs of every kind: short, 64 KiB-unaligned, long, trailing. */
    memset(ram + 4096, 0x11, 4096);
    memset(ram + 200 * 1024 + 3, 0x22, 10);
    memset(ram + 3 * MiB + 65536, 0x33, 65536);
    elf_dump_to(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), ram, ram_size);
    g_assert_true(g_file_get_contents(path, &ref, &ref_len, NULL));

    g_assert_cmpint(pipe(fds), ==, 0);
    reader = g_thread_new("drain", drain, GINT_TO_POINTER(fds[0]));
    elf_dump_to(fds[1], ram, ram_size);
    got = g_thread_join(reader);
    g_assert_cmpmem(got->data, got->len, ref, ref_len);
    g_byte_array_unref(got);
    remove_tmp(path);
}

/* A reader gone in the middle of a zero run: EPIPE, as a plain write gives. */
static void test_pipe_zero_splice_epipe(void)
{
    g_autofree uint8_t *zero = g_malloc0(4 * MiB);
    DumpOutput *out;
    int fds[2];

    signal(SIGPIPE, SIG_IGN);
    g_assert_cmpint(pipe(fds), ==, 0);
    out = dump_output_new_fd(fds[1], false);
    close(fds[0]);
    errno = 0;
    g_assert_false(dump_output_write(out, zero, 4 * MiB));
    g_assert_cmpint(errno, ==, EPIPE);
    dump_output_free(out);
}

/* RAM the machine maps itself (pc.ram) is advised MADV_HUGEPAGE too. */
static void test_given_ram_huge_pages(void)
{
    g_autoptr(Error) err = NULL;
    const uint64_t size = 8 * MiB;
    uint8_t *host = mmap(NULL, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    g_autofree char *entry = NULL;

    g_assert_true(host != MAP_FAILED);
    physmem_reset();
    if (!physmem_add_block("pc.ram", 0, size, host, false, 1, &err)) {
        g_error("physmem_add_block: %s", error_get_pretty(err));
    }
    entry = smaps_entry(host);
    g_assert_nonnull(entry);
#ifdef MADV_HUGEPAGE
    g_assert_nonnull(strstr(strstr(entry, "VmFlags:"), " hg"));
#endif
    physmem_reset();
    /* Not physmem's to unmap. */
    host[size - 1] = 1;
    munmap(host, size);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/write-path/pipe-enlarged", test_pipe_enlarged);
    g_test_add_func("/write-path/pipe-not-shrunk", test_pipe_not_shrunk);
    g_test_add_func("/write-path/ram-huge-pages", test_ram_huge_pages);
    g_test_add_func("/write-path/given-ram-huge-pages", test_given_ram_huge_pages);
    g_test_add_func("/write-path/sparse-file", test_sparse_file);
    g_test_add_func("/write-path/not-sparse-over-data", test_not_sparse_over_data);
    g_test_add_func("/write-path/not-sparse-append", test_not_sparse_append);
    g_test_add_func("/write-path/flattened-not-sparse", test_flattened_not_sparse);
    g_test_add_func("/write-path/elf-zero-ram-is-sparse", test_elf_zero_ram_is_sparse);
    g_test_add_func("/write-path/elf-pipe-zero-splice", test_elf_pipe_zero_splice);
    g_test_add_func("/write-path/pipe-zero-splice-epipe", test_pipe_zero_splice_epipe);
    return g_test_run();
}
