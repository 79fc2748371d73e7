/*
 * uffd-wp-cost: what one UFFDIO_WRITEPROTECT over populated anonymous RAM
 * costs, the step that dominates a live dump's pause (docs/performance.md,
 * "Live dumps").
 *
 *     uffd-wp-cost MIB HUGE SPLIT
 *
 * Maps MIB MiB (2 MiB-aligned), advises MADV_HUGEPAGE (HUGE=1) or
 * MADV_NOHUGEPAGE (0), writes every page, registers the range for
 * write-protection and, three times, write-protects all of it in one ioctl
 * (timed: wall and this thread's CPU) and lifts the protection again: in one
 * ioctl (SPLIT=0) or page by page (SPLIT=1), which is what splits huge page
 * mappings. Prints the times and AnonHugePages after each round.
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HUGE_SIZE (2ul << 20)

static double now(clockid_t c)
{
    struct timespec t;

    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long anon_huge_kib(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kib = -1;

    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "AnonHugePages:", 14)) {
            kib = atol(line + 14);
        }
    }
    if (f) {
        fclose(f);
    }
    return kib;
}

static int wp(int uffd, char *p, size_t len, int on)
{
    struct uffdio_writeprotect w = {
        .range = { .start = (unsigned long)p, .len = len },
        .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };

    return ioctl(uffd, UFFDIO_WRITEPROTECT, &w);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MIB HUGE(0|1) SPLIT(0|1)\n", argv[0]);
        return 2;
    }
    size_t size = (size_t)atol(argv[1]) << 20;
    int huge = atoi(argv[2]), split = atoi(argv[3]);
    char *map = mmap(NULL, size + HUGE_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (!size || map == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    char *p = (char *)(((unsigned long)map + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1));
    madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    for (size_t i = 0; i < size; i += 4096) {
        p[i] = 1;
    }

    int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = { .api = UFFD_API,
                              .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
    struct uffdio_register reg = {
        .range = { .start = (unsigned long)p, .len = size },
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
        perror("userfaultfd");
        return 1;
    }
    for (int round = 0; round < 3; round++) {
        double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);

        if (wp(uffd, p, size, 1)) {
            perror("UFFDIO_WRITEPROTECT");
            return 1;
        }
        double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID);

        if (split) {
            for (size_t i = 0; i < size; i += 4096) {
                wp(uffd, p + i, 4096, 0);
            }
        } else {
            wp(uffd, p, size, 0);
        }
        double t2 = now(CLOCK_MONOTONIC);

        printf("%zu MiB huge=%d split=%d round %d: protect %.1f ms (cpu %.1f ms), "
               "unprotect %.1f ms, AnonHugePages %ld MiB\n", size >> 20, huge, split,
               round, (t1 - t0) * 1e3, (c1 - c0) * 1e3, (t2 - t1) * 1e3,
               anon_huge_kib() >> 10);
    }
    return 0;
}
