/*
 * guestdump-convert: an existing vmcore into any dump format, offline.
 *
 * The input is restored exactly as `guestdump -restore FILE` restores it
 * (system/restore.c into guestdump's machine), except that the file is
 * mapped rather than copied; then the dump is written by the same call the
 * QMP command makes, qmp_dump_guest_memory(), through the module's one host
 * interface (system/dump-host.c). There is no second writer: the output is
 * what dump-guest-memory writes for the restored state. No monitor runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "config-host.h"
#include "hw/vmcoreinfo.h"
#include "monitor/monitor.h"
#include "qapi-commands.h"
#include "qapi/error.h"
#include "qapi/util.h"
#include "qemu/bswap.h"
#include "sysemu/dump-core.h"
#include "sysemu/machine.h"
#include "sysemu/physmem.h"
#include "system/restore.h"
#include "system/vmcore-probe.h"

#define PROG "guestdump-convert"

/* How often the progress thread looks whether the input's pages are due a trim. */
#define TRIM_PERIOD_US (50 * 1000)
#define TRIM_BYTES     (16u << 20)

/* Exit codes (docs/guestdump-convert.md). */
enum { EXIT_DONE = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: " PROG " [options] INPUT OUTPUT\n"
    "\n"
    "Converts the vmcore INPUT into OUTPUT in any format dump-guest-memory writes,\n"
    "offline, with the same writers. INPUT is recognised by its contents: an ELF\n"
    "vmcore (QEMU's or guestdump's dump-guest-memory with paging=false, virsh dump\n"
    "--memory-only, a Linux /proc/vmcore saved by kdump) or a kdump-compressed file\n"
    "(raw or flattened, any codec of this build). OUTPUT '-' is standard output (a\n"
    "pipe or a file).\n"
    "\n"
    "Options:\n"
    "  -O, --format FMT     output format (default kdump-zlib); this build writes\n"
    "                       %s\n"
    "  -p, --paging         ELF only: walk the guest's page tables (dump-guest-memory's\n"
    "                       paging=true)\n"
    "  -b, --begin ADDR     ELF only: guest-physical start of the range to dump\n"
    "  -l, --length SIZE    ELF only: length of that range (both or neither)\n"
    "  -d, --dump-level N   kdump formats, Linux guests: leave out the pages\n"
    "                       makedumpfile -d N leaves out (0-31: 1 zero, 2 cache,\n"
    "                       4 cache with private data, 8 user, 16 free pages)\n"
    "  -t, --threads N      compression threads (default: online CPUs)\n"
    "  -m, --max-ram SIZE   kdump inputs: the most RAM the file may describe\n"
    "                       (guestdump's -restore-max-ram; default 64G)\n"
    "  -f, --force          overwrite OUTPUT if it exists\n"
    "  -q, --quiet          no progress and no summary (warnings about the dump's\n"
    "                       contents, as dump-guest-memory gives them, and errors\n"
    "                       are still printed)\n"
    "  -h, --help           this text\n"
    "  -V, --version        the version\n"
    "\n"
    "Sizes and addresses take a k, M, G or T suffix (powers of 1024) or 0x.\n"
    "Exit status: 0 done, 1 failed (OUTPUT not left behind), 2 usage error.\n";

typedef struct Options {
    DumpGuestMemoryFormat format;
    bool paging;
    bool has_begin, has_length;
    int64_t begin, length;
    bool has_dump_level;
    int64_t dump_level;         /* dump-guest-memory's dump-level, checked there */
    int threads;
    int64_t max_ram;            /* --max-ram, 0: restore's default */
    bool force;
    bool quiet;
    const char *input;
    const char *output;
} Options;

/* The output being written: a temporary name next to OUTPUT, renamed at the end. */
static char *tmp_path;
static volatile sig_atomic_t tmp_path_set;
static volatile sig_atomic_t got_signal;

static void G_GNUC_PRINTF(1, 2) fail_msg(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry '" PROG " --help' for more information\n", stderr);
    exit(EXIT_USAGE);
}

/* The formats this build writes, in query-dump-guest-memory-capability's order. */
static char *format_names(bool wrap)
{
    g_autoptr(DumpGuestMemoryCapability) cap =
        qmp_query_dump_guest_memory_capability(NULL);
    GString *s = g_string_new(NULL);
    size_t line = 0;

    for (DumpGuestMemoryFormatList *l = cap->formats; l; l = l->next) {
        const char *name = DumpGuestMemoryFormat_str(l->value);

        if (s->len) {
            g_string_append_c(s, ',');
            line++;
            /* --help's column: wrap under the first name */
            if (wrap && line + 1 + strlen(name) > 56) {
                g_string_append(s, "\n                      ");
                line = 0;
            }
            g_string_append_c(s, ' ');
            line++;
        }
        g_string_append(s, name);
        line += strlen(name);
    }
    return g_string_free(s, FALSE);
}

static bool format_available(DumpGuestMemoryFormat f)
{
    g_autoptr(DumpGuestMemoryCapability) cap =
        qmp_query_dump_guest_memory_capability(NULL);

    for (DumpGuestMemoryFormatList *l = cap->formats; l; l = l->next) {
        if (l->value == f) {
            return true;
        }
    }
    return false;
}

/* "4096", "0x1000", "4k", "1.5G": bytes; powers of 1024 as qemu-img. */
static bool parse_size(const char *s, int64_t *out)
{
    char *end;
    guint64 v;
    uint64_t mul = 1;

    if (!*s || *s == '-' || *s == '+') {
        return false;
    }
    errno = 0;
    v = g_ascii_strtoull(s, &end, 0);
    if (errno || end == s) {
        return false;
    }
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mul = 1ull << 10; end++; break;
    case 'm': case 'M': mul = 1ull << 20; end++; break;
    case 'g': case 'G': mul = 1ull << 30; end++; break;
    case 't': case 'T': mul = 1ull << 40; end++; break;
    default: return false;
    }
    if (*end || v > (uint64_t)INT64_MAX / mul) {
        return false;
    }
    *out = (int64_t)(v * mul);
    return true;
}

static void parse_args(int argc, char **argv, Options *o)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'O' },
        { "paging", no_argument, NULL, 'p' },
        { "begin", required_argument, NULL, 'b' },
        { "length", required_argument, NULL, 'l' },
        { "dump-level", required_argument, NULL, 'd' },
        { "threads", required_argument, NULL, 't' },
        { "max-ram", required_argument, NULL, 'm' },
        { "force", no_argument, NULL, 'f' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    o->format = DUMP_GUEST_MEMORY_FORMAT_KDUMP_ZLIB;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":O:pb:l:d:t:m:fqhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'O': {
            int f = qapi_enum_parse(&DumpGuestMemoryFormat_lookup, optarg, -1, NULL);

            if (f < 0 || !format_available(f)) {
                char *names = format_names(false);
                char *msg = g_strdup_printf("%s format '%s'; this build writes: %s",
                                            f < 0 ? "Unknown" : "Unavailable", optarg,
                                            names);

                g_free(names);
                /* usage_error exits: nothing may stay allocated (LeakSanitizer) */
                fprintf(stderr, PROG ": %s\n", msg);
                g_free(msg);
                fputs("Try '" PROG " --help' for more information\n", stderr);
                exit(EXIT_USAGE);
            }
            o->format = f;
            break;
        }
        case 'p':
            o->paging = true;
            break;
        case 'b':
            if (!parse_size(optarg, &o->begin)) {
                usage_error("Invalid begin address '%s'", optarg);
            }
            o->has_begin = true;
            break;
        case 'l':
            if (!parse_size(optarg, &o->length) || o->length == 0) {
                usage_error("Invalid length '%s'", optarg);
            }
            o->has_length = true;
            break;
        case 'd': {
            char *end;

            errno = 0;
            o->dump_level = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || o->dump_level < 0 ||
                o->dump_level > 31) {
                usage_error("Invalid dump level '%s' (0 to 31)", optarg);
            }
            o->has_dump_level = true;
            break;
        }
        case 't': {
            int64_t n;

            if (!parse_size(optarg, &n) || n < 1 || n > 1024) {
                usage_error("Invalid thread count '%s' (1 to 1024)", optarg);
            }
            o->threads = (int)n;
            break;
        }
        case 'm':
            if (!parse_size(optarg, &o->max_ram) || o->max_ram == 0 ||
                (uint64_t)o->max_ram > RESTORE_MAX_RAM_LIMIT) {
                usage_error("Invalid RAM size '%s' (up to %lluT)", optarg,
                            RESTORE_MAX_RAM_LIMIT >> 40);
            }
            break;
        case 'f':
            o->force = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h': {
            char *names = format_names(true);

            printf(usage_text, names);
            g_free(names);
            exit(EXIT_DONE);
        }
        case 'V':
            printf(PROG " (guestdump " GUESTDUMP_VERSION "): QEMU 7.2's dump writers, "
                   "offline; GPL-2.0-or-later\n");
            fflush(stdout);
            exit(EXIT_DONE);
        case ':':
            usage_error("Option '%s' requires an argument", argv[optind - 1]);
        default:
            if (optopt) {
                usage_error("Invalid option -- '%c'", optopt);
            }
            usage_error("Invalid option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) {
        usage_error("Expecting an input and an output file name");
    }
    o->input = argv[optind];
    o->output = argv[optind + 1];
    if (o->format != DUMP_GUEST_MEMORY_FORMAT_ELF &&
        (o->paging || o->has_begin || o->has_length)) {
        /* dump-guest-memory's own text for the same request */
        usage_error("kdump-compressed format doesn't support paging or filter");
    }
    if (o->has_begin != o->has_length) {
        usage_error("--begin and --length go together");
    }
}

/* ---------------------------------------------------------------------- */
/* The input                                                                */
/* ---------------------------------------------------------------------- */

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO or pipe" :
           S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" :
           S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/*
 * INPUT's file kind before the machine is built: it exists, is a regular
 * file and is not empty. What its contents are is restore's to say
 * (system/vmcore-probe.c: an ELF vmcore, a kdump file, or a one-line name
 * for anything else), like every other problem with it.
 */
static bool check_input(const char *path, struct stat *st, VmcoreKind *kind)
{
    int fd;

    if (!strcmp(path, "-")) {
        fail_msg("INPUT cannot be standard input: a vmcore is mapped or read at "
                 "offsets its headers give; name a file");
        return false;
    }
    /* O_NONBLOCK: a FIFO must not block the open; it is refused below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0 || fstat(fd, st) < 0) {
        fail_msg("Could not open '%s': %s", path, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    *kind = vmcore_probe_fd(fd);
    close(fd);
    if (!S_ISREG(st->st_mode)) {
        fail_msg("'%s' is %s, not a vmcore file", path, file_kind(st->st_mode));
        return false;
    }
    if (st->st_size == 0) {
        fail_msg("'%s' is empty", path);
        return false;
    }
    return true;
}

/* restore's errors start "-restore: 'PATH': "; here the path alone says it. */
static void report_restore_error(Error *err)
{
    const char *msg = error_get_pretty(err);
    g_auto(GStrv) parts = NULL;
    g_autofree char *text = NULL;

    if (g_str_has_prefix(msg, "-restore: ")) {
        msg += strlen("-restore: ");
    }
    /* restore's limit is our --max-ram */
    parts = g_strsplit(msg, "-restore-max-ram", -1);
    text = g_strjoinv("--max-ram", parts);
    fail_msg("%s", text);
    error_free(err);
}

/* restore's warnings say "guestdump: warning: -restore: "; ours say who we are. */
static void print_warning(const gchar *s)
{
    const char *prefix = "guestdump: warning: -restore: ";

    if (g_str_has_prefix(s, prefix)) {
        fprintf(stderr, PROG ": warning: %s", s + strlen(prefix));
    } else {
        fputs(s, stderr);
    }
}

/*
 * win-dmp is built from the guest's own DUMP_HEADER, which the Windows FwCfg
 * driver writes into the vmcoreinfo device; dump-guest-memory copied it into
 * the ELF as the VMCOREINFO note. Say plainly when it is not there.
 */
static bool check_win_note(const char *input)
{
    const VMCoreInfoState *vmci = vmcoreinfo_find();
    uint8_t h[32];
    uint32_t namesz;

    if (!vmci || !vmci->has_vmcoreinfo || vmci->size < sizeof(h) ||
        !physmem_read(vmci->paddr, h, sizeof(h), NULL)) {
        fail_msg("'%s' has no VMCOREINFO note, and win-dmp is built from the "
                 "Windows guest's own DUMP_HEADER that this note carries: the "
                 "guest's FwCfg driver (virtio-win fwcfg) was not loaded when the "
                 "dump was taken", input);
        return false;
    }
    namesz = ldl_le_p(h);
    if (namesz <= 12 && 12 + ((namesz + 3) & ~3u) + 4 <= sizeof(h) &&
        memcmp(h + 12 + ((namesz + 3) & ~3u), "PAGE", 4)) {
        fail_msg("'%s': its VMCOREINFO note holds no Windows DUMP_HEADER "
                 "(no 'PAGE' signature): not a dump of a Windows guest", input);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* The output                                                               */
/* ---------------------------------------------------------------------- */

static void unlink_tmp(void)
{
    if (tmp_path) {
        tmp_path_set = 0;
        unlink(tmp_path);
        g_clear_pointer(&tmp_path, g_free);
    }
}

/*
 * The protocol for qmp_dump_guest_memory. A regular OUTPUT is written under
 * a temporary name in its directory and renamed over OUTPUT at the end, so a
 * failed or interrupted conversion leaves neither a partial file nor, with
 * --force, a damaged old one. '-' hands standard output to fd:stdout; an
 * existing device or FIFO (with --force) is written in place.
 */
static char *open_output(const Options *o, const struct stat *in_st)
{
    struct stat st;
    g_autofree char *dir = NULL;
    g_autofree char *base = NULL;
    int fd;

    if (!strcmp(o->output, "-")) {
        if (isatty(STDOUT_FILENO)) {
            fail_msg("refusing to write a dump to a terminal; redirect standard "
                     "output or name a file");
            return NULL;
        }
        fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            fail_msg("standard output: %s", g_strerror(errno));
            return NULL;
        }
        monitor_add_host_fd("stdout", fd);
        return g_strdup("fd:stdout");
    }
    if (stat(o->output, &st) == 0) {
        if (st.st_dev == in_st->st_dev && st.st_ino == in_st->st_ino) {
            fail_msg("'%s' is the input file", o->output);
            return NULL;
        }
        if (!o->force) {
            fail_msg("'%s' already exists (--force overwrites it)", o->output);
            return NULL;
        }
        if (S_ISDIR(st.st_mode)) {
            fail_msg("'%s' is a directory", o->output);
            return NULL;
        }
        if (!S_ISREG(st.st_mode)) {
            return g_strconcat("file:", o->output, NULL);
        }
    } else if (errno != ENOENT) {
        fail_msg("Could not open '%s': %s", o->output, g_strerror(errno));
        return NULL;
    }
    dir = g_path_get_dirname(o->output);
    base = g_path_get_basename(o->output);
    tmp_path = g_strdup_printf("%s/.%s.convert-XXXXXX", dir, base);
    fd = g_mkstemp_full(tmp_path, O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail_msg("Could not create a file in '%s': %s", dir, g_strerror(errno));
        g_clear_pointer(&tmp_path, g_free);
        return NULL;
    }
    close(fd);
    tmp_path_set = 1;
    return g_strconcat("file:", tmp_path, NULL);
}

static bool commit_output(const Options *o)
{
    if (!tmp_path) {
        return true;
    }
    if (rename(tmp_path, o->output) < 0) {
        fail_msg("Could not rename '%s' to '%s': %s", tmp_path, o->output,
                 g_strerror(errno));
        unlink_tmp();
        return false;
    }
    tmp_path_set = 0;
    g_clear_pointer(&tmp_path, g_free);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Signals                                                                  */
/* ---------------------------------------------------------------------- */

static void on_exit_signal(int sig)
{
    int saved = errno;

    if (got_signal) {
        /* A second Ctrl-C: do not wait for the writer to notice. */
        if (tmp_path_set) {
            unlink(tmp_path);
        }
        _exit(EXIT_FAILED);
    }
    got_signal = sig;
    /* A write waiting for room in a pipe sees the flag within 100 ms. */
    dump_cancel_async();
    errno = saved;
}

/* The input shrank under the mapping: nothing sensible can follow. */
static void on_sigbus(int sig)
{
    static const char msg[] = PROG ": the input file changed (shrank) during the "
                              "conversion\n";

    if (tmp_path_set) {
        unlink(tmp_path);
    }
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        /* nothing to do */
    }
    _exit(EXIT_FAILED);
}

static void install_signals(void)
{
    struct sigaction sa = { .sa_handler = on_exit_signal };

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---------------------------------------------------------------------- */
/* Progress                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct Progress {
    GMutex lock;
    GCond cond;
    bool stop;
    bool quiet;
    bool tty;
    bool trim;                  /* physmem_trim_file_ram() as the dump advances */
    int64_t start_us;
    int64_t last_line_us;
} Progress;

static char *human(uint64_t v)
{
    return g_format_size_full(v, G_FORMAT_SIZE_IEC_UNITS);
}

static char *eta_text(double secs)
{
    if (secs < 0 || secs > 99 * 3600) {
        return g_strdup("--:--");
    }
    if (secs >= 3600) {
        return g_strdup_printf("%d:%02d:%02d", (int)secs / 3600,
                               ((int)secs / 60) % 60, (int)secs % 60);
    }
    return g_strdup_printf("%d:%02d", (int)secs / 60, (int)secs % 60);
}

static void progress_print(Progress *p, bool final)
{
    g_autoptr(DumpQueryResult) r = qmp_query_dump(NULL);
    double el = (g_get_monotonic_time() - p->start_us) / 1e6;
    uint64_t done = r->completed, total = r->total;
    double frac = total ? (double)done / total : 0;
    double rate = el > 0 ? done / el : 0;
    g_autofree char *d = human(done);
    g_autofree char *t = human(total);
    g_autofree char *rt = human((uint64_t)rate);
    g_autofree char *eta = eta_text(rate > 0 ? (total - MIN(done, total)) / rate : -1);

    if (frac > 1) {
        frac = 1;
    }
    if (p->tty) {
        struct winsize ws;
        int width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ?
                    ws.ws_col : 80;
        g_autofree char *tail = g_strdup_printf(" %3d%% %s / %s  %s/s  %s left",
                                                (int)(frac * 100), d, t, rt, eta);
        int bar = MIN(width - (int)strlen(tail) - 3, 40);
        GString *line = g_string_new("\r[");

        for (int i = 0; i < bar; i++) {
            g_string_append_c(line, i < (int)(frac * bar) ? '#' : ' ');
        }
        g_string_append_printf(line, "]%s\033[K", tail);
        if (final) {
            g_string_append_c(line, '\n');
        }
        fputs(line->str, stderr);
        g_string_free(line, TRUE);
    } else {
        fprintf(stderr, PROG ": %d%%, %s of %s, %s/s, %s left\n", (int)(frac * 100),
                d, t, rt, eta);
    }
    fflush(stderr);
}

/* A terminal gets a bar 5 times a second; a log a line every 10 s. */
static gpointer progress_thread(gpointer opaque)
{
    Progress *p = opaque;
    int64_t period = p->tty ? G_USEC_PER_SEC / 5 : 10 * G_USEC_PER_SEC;
    int64_t next = g_get_monotonic_time() + period;
    int64_t next_trim = g_get_monotonic_time() + TRIM_PERIOD_US;
    uint64_t trimmed_at = 0;
    sigset_t set;

    /* The main thread takes Ctrl-C. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    g_mutex_lock(&p->lock);
    while (!p->stop) {
        int64_t until = p->trim ? MIN(next, next_trim) : next;

        g_cond_wait_until(&p->cond, &p->lock, until);
        if (p->stop) {
            break;
        }
        if (p->trim && g_get_monotonic_time() >= next_trim) {
            g_autoptr(DumpQueryResult) r = qmp_query_dump(NULL);

            /*
             * The input's pages the writer has read stay mapped and count in
             * RSS; drop them (they are the file's, unchanged) every
             * TRIM_BYTES of progress, so memory stays bounded by what the
             * writer holds, not by the input's size.
             */
            next_trim = g_get_monotonic_time() + TRIM_PERIOD_US;
            if ((uint64_t)r->completed - trimmed_at >= TRIM_BYTES) {
                trimmed_at = r->completed;
                p->trim = physmem_trim_file_ram();
            }
        }
        if (g_get_monotonic_time() >= next) {
            next += period;
            if (!p->quiet) {
                progress_print(p, false);
            }
        }
    }
    g_mutex_unlock(&p->lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    Options o = { 0 };
    MachineOptions mo = { .machine_type = (char *)"pc", .smp = 1 };
    Progress prog = { 0 };
    GThread *pt = NULL;
    struct stat in_st;
    VmcoreKind kind;
    Error *err = NULL;
    g_autofree char *protocol = NULL;
    int64_t t0;

    g_set_prgname(PROG);
    parse_args(argc, argv, &o);
    g_set_printerr_handler(print_warning);
    install_signals();
    if (o.threads) {
        dump_set_thread_count(o.threads);
    }
    if (!check_input(o.input, &in_st, &kind)) {
        return EXIT_FAILED;
    }

    /* The state `guestdump -restore INPUT` has, RAM mapped from the file. */
    t0 = g_get_monotonic_time();
    restore_set_mapped(true);
    mo.restore = (char *)o.input;
    /*
     * An ELF input is mapped: memory costs nothing and its own size bounds
     * the work. A kdump file's pages are decompressed into a temporary
     * file, where a few MiB of input can describe terabytes: restore's
     * limit applies.
     */
    mo.restore_max_ram = o.max_ram ? (uint64_t)o.max_ram :
                         kind == VMCORE_KIND_ELF_CORE ? RESTORE_MAX_RAM_LIMIT : 0;
    mo.devices = g_ptr_array_new();
    if (!machine_init(&mo, &err)) {
        g_ptr_array_free(mo.devices, TRUE);
        report_restore_error(err);
        return EXIT_FAILED;
    }
    g_ptr_array_free(mo.devices, TRUE);
    /*
     * The restore read RAM looking for the guest note (all of it when the
     * note sits high): drop those pages before the dump starts, or the
     * peak is the whole input however often the dump trims.
     */
    physmem_trim_file_ram();
    if (o.format == DUMP_GUEST_MEMORY_FORMAT_WIN_DMP && !check_win_note(o.input)) {
        machine_cleanup();
        return EXIT_FAILED;
    }
    if (got_signal) {
        machine_cleanup();
        fail_msg("interrupted; nothing written");
        return EXIT_FAILED;
    }
    protocol = open_output(&o, &in_st);
    if (!protocol) {
        machine_cleanup();
        return EXIT_FAILED;
    }

    prog.tty = isatty(STDERR_FILENO);
    prog.quiet = o.quiet;
    /* win-dmp patches the guest's context in RAM for the time of the dump */
    prog.trim = o.format != DUMP_GUEST_MEMORY_FORMAT_WIN_DMP;
    prog.start_us = g_get_monotonic_time();
    g_mutex_init(&prog.lock);
    g_cond_init(&prog.cond);
    pt = g_thread_new("progress", progress_thread, &prog);

    /* dump-guest-memory, as a monitor would run it (detach=false). */
    qmp_dump_guest_memory(o.paging, protocol, true, false, o.has_begin, o.begin,
                          o.has_length, o.length, true, o.format,
                          o.has_dump_level, o.dump_level, false, false, &err);

    if (pt) {
        g_mutex_lock(&prog.lock);
        prog.stop = true;
        g_cond_signal(&prog.cond);
        g_mutex_unlock(&prog.lock);
        g_thread_join(pt);
        if (o.quiet) {
            /* nothing */
        } else if (!err) {
            progress_print(&prog, true);
        } else if (prog.tty) {
            fputc('\n', stderr);
        }
    }
    if (err) {
        unlink_tmp();
        if (got_signal) {
            error_free(err);
            fail_msg("interrupted (%s); '%s' not written", g_strsignal(got_signal),
                     o.output);
        } else {
            fail_msg("%s", error_get_pretty(err));
            error_free(err);
        }
        machine_cleanup();
        return EXIT_FAILED;
    }
    machine_cleanup();
    if (!commit_output(&o)) {
        return EXIT_FAILED;
    }
    if (!o.quiet) {
        fprintf(stderr, PROG ": '%s' -> '%s' (%s) in %.1f s\n", o.input, o.output,
                DumpGuestMemoryFormat_str(o.format),
                (g_get_monotonic_time() - t0) / 1e6);
    }
    return EXIT_DONE;
}
