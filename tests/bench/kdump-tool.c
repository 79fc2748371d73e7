/* The kdump writer outside the host: convert a QEMU ELF vmcore, or time a RAM image. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/dump-compress.h"
#include "test-kdump-util.h"

static const char usage[] =
    "usage: kdump-tool convert ELF OUT [options]   QEMU ELF vmcore -> kdump\n"
    "       kdump-tool ram IMAGE OUT [options]     RAM image at gpa 0 -> kdump,"
    " timed\n"
    "options: --format zlib|lzo|snappy|zstd (zlib)  --raw  --threads N\n"
    "OUT '-' is stdout (flattened only; a pipe is fine).\n";

static uint32_t parse_format(const char *s)
{
    static const struct {
        const char *name;
        uint32_t flag;
    } t[] = {
        { "zlib", DUMP_DH_COMPRESSED_ZLIB }, { "lzo", DUMP_DH_COMPRESSED_LZO },
        { "snappy", DUMP_DH_COMPRESSED_SNAPPY }, { "zstd", DUMP_DH_COMPRESSED_ZSTD },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        if (!strcmp(s, t[i].name)) {
            return t[i].flag;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t flag = DUMP_DH_COMPRESSED_ZLIB;
    bool raw = false;
    int threads = 0;
    KdumpTestGuest *g;
    g_autofree char *msg = NULL;
    gint64 t0;
    double secs;
    uint64_t ram = 0;
    bool ok;

    if (argc < 4) {
        fputs(usage, stderr);
        return 2;
    }
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--raw")) {
            raw = true;
        } else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            flag = parse_format(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            flag = 0;
        }
    }
    if (!flag || !dump_codec_available(flag)) {
        fprintf(stderr, "kdump-tool: unknown or unavailable format\n%s", usage);
        return 2;
    }
    if (!strcmp(argv[1], "convert")) {
        GError *gerr = NULL;

        g = kdump_test_guest_from_elf(argv[2], &gerr);
        if (!g) {
            fprintf(stderr, "kdump-tool: %s\n", gerr->message);
            return 1;
        }
    } else if (!strcmp(argv[1], "ram")) {
        struct stat st;
        int fd = open(argv[2], O_RDONLY);
        uint8_t *m;

        if (fd < 0 || fstat(fd, &st) < 0) {
            fprintf(stderr, "kdump-tool: %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        /* Populated up front: the timing is of the dump, not of page faults. */
        m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, "kdump-tool: mmap: %s\n", strerror(errno));
            return 1;
        }
        g = kdump_test_guest_new();
        g->blocks.blocks = g_new0(DumpGuestBlock, 1);
        g->blocks.num = 1;
        g->blocks.blocks[0] = (DumpGuestBlock){ 0, st.st_size, m };
        g->nr_cpus = 1;
    } else {
        fputs(usage, stderr);
        return 2;
    }
    for (size_t i = 0; i < g->blocks.num; i++) {
        ram += g->blocks.blocks[i].target_end - g->blocks.blocks[i].target_start;
    }
    t0 = g_get_monotonic_time();
    if (!strcmp(argv[3], "-")) {
        ok = !raw && kdump_test_write_fd(g, flag, false, threads, STDOUT_FILENO, false,
                                         &msg);
        if (raw) {
            msg = g_strdup("raw output needs a file");
        }
    } else {
        ok = kdump_test_write(g, flag, raw, threads, argv[3], &msg);
    }
    secs = (g_get_monotonic_time() - t0) / 1e6;
    if (!ok) {
        fprintf(stderr, "kdump-tool: %s\n", msg);
        return 1;
    }
    fprintf(stderr, "{\"seconds\": %.3f, \"ram_bytes\": %" G_GUINT64_FORMAT
            ", \"mb_s\": %.1f, \"threads\": %d}\n", secs, ram, ram / secs / 1e6,
            threads ? threads : dump_thread_count());
    kdump_test_guest_free(g);
    return 0;
}
