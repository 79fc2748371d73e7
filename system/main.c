/* The guestdump host program: QEMU-style options, the main loop, clean exit. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "config-host.h"
#include "monitor/chardev.h"
#include "qapi/error.h"
#include "sysemu/dump-core.h"
#include "sysemu/machine.h"
#include "sysemu/runstate.h"
#include "system/restore.h"

static const char usage_text[] =
    "usage: guestdump [options]\n"
    "\n"
    "A QEMU-style host around QEMU 7.2's guest-memory dump subsystem.\n"
    "\n"
    "Machine:\n"
    "  -machine|-M TYPE[,accel=qtest]  pc (default), q35 or none\n"
    "  -m SIZE             guest RAM (MiB, or with a k/M/G/T suffix)\n"
    "  -smp N              number of vCPUs\n"
    "  -bios FILE          firmware image\n"
    "  -device STRING      e.g. loader,file=F,addr=A or vmcoreinfo\n"
    "  -demo               built-in demo guest (long mode, page tables, vmcoreinfo)\n"
    "  -demo-seed N        seed for the demo guest's contents\n"
    "  -demo-write-load    a thread rewrites the demo guest's RAM while it runs\n"
    "  -restore FILE       guest state from a vmcore: ELF (paging=false) or kdump\n"
    "  -restore-max-ram SIZE  the most RAM a -restore file may hold (default 64G)\n"
    "  -qtest CHARDEV      qtest protocol server (unix:PATH or stdio)\n"
    "  -S                  do not start the guest (status prelaunch)\n"
    "  -name NAME          guest name\n"
    "\n"
    "Monitor:\n"
    "  -qmp DEV            QMP on DEV: stdio, unix:PATH,server=on,wait=off,\n"
    "                      tcp:[HOST]:PORT,server=on,wait=off\n"
    "  -monitor DEV        HMP on DEV (same forms)\n"
    "  -chardev socket,id=ID,path=PATH,server=on,wait=off | stdio,id=ID\n"
    "  -chardev socket,id=ID,fd=N[,server=on,wait=off]  a socket inherited from\n"
    "                      the parent: connected, or listening with server=on\n"
    "  -mon chardev=ID[,mode=control|readline]\n"
    "\n"
    "Dump:\n"
    "  -dump-threads N     compression threads (default: online CPUs)\n"
    "\n"
    "  -daemonize          detach once the monitors listen\n"
    "  -pidfile FILE       write the host's pid to FILE (removed at exit)\n"
    "\n"
    "  -version            print the version\n"
    "  -h, -help           this text\n"
    "  -nodefaults, -display X, -nographic, -accel X, -no-user-config, -enable-kvm,\n"
    "  -cpu X, -no-reboot, -no-shutdown are accepted for\n"
    "  compatibility (see the README for what they mean here)\n";

static GMainLoop *loop;

static gboolean on_signal(gpointer opaque)
{
    int sig = GPOINTER_TO_INT(opaque);

    fprintf(stderr, "guestdump: terminating on signal %d\n", sig);
    qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_SIGNAL);
    return G_SOURCE_CONTINUE;
}

/*
 * GLib runs on_signal from the main loop, which a dump's page walk can keep
 * busy; this runs in the signal handler first, so the walk stops at once,
 * then hands the signal to GLib's handler as before.
 */
static const int exit_signals[] = { SIGTERM, SIGINT, SIGHUP };
static struct sigaction glib_actions[G_N_ELEMENTS(exit_signals)];

static void on_exit_signal_async(int sig, siginfo_t *info, void *ctx)
{
    int saved = errno;

    dump_cancel_async();
    for (size_t i = 0; i < G_N_ELEMENTS(exit_signals); i++) {
        const struct sigaction *a = &glib_actions[i];

        if (exit_signals[i] != sig) {
            continue;
        }
        if (a->sa_flags & SA_SIGINFO) {
            a->sa_sigaction(sig, info, ctx);
        } else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN) {
            a->sa_handler(sig);
        }
    }
    errno = saved;
}

static void chain_exit_signals(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(exit_signals); i++) {
        struct sigaction sa = {
            .sa_sigaction = on_exit_signal_async,
            .sa_flags = SA_SIGINFO | SA_RESTART,
        };

        sigemptyset(&sa.sa_mask);
        sigaction(exit_signals[i], &sa, &glib_actions[i]);
    }
}

/* "128" is MiB as in QEMU; k/M/G/T suffixes (either case) scale. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = g_ascii_strtod(s, &end);
    uint64_t mul = 1 << 20;

    if (errno || end == s || v < 0) {
        return false;
    }
    switch (*end) {
    case '\0': break;
    case 'b': case 'B': mul = 1; end++; break;
    case 'k': case 'K': mul = 1ull << 10; end++; break;
    case 'm': case 'M': mul = 1ull << 20; end++; break;
    case 'g': case 'G': mul = 1ull << 30; end++; break;
    case 't': case 'T': mul = 1ull << 40; end++; break;
    default: return false;
    }
    if (*end || v * mul >= 18446744073709551615.0) {
        return false;
    }
    *out = (uint64_t)(v * mul);
    return true;
}

/* The value of key in "a,key=v,b" style options; the first item may be bare. */
static char *opt_get(const char *opts, const char *key, bool first_is_key)
{
    g_auto(GStrv) parts = g_strsplit(opts, ",", -1);
    size_t kl = strlen(key);

    for (char **p = parts; *p; p++) {
        if (!strncmp(*p, key, kl) && (*p)[kl] == '=') {
            return g_strdup(*p + kl + 1);
        }
        if (p == parts && first_is_key && !strchr(*p, '=')) {
            return g_strdup(*p);
        }
    }
    return NULL;
}

static bool parse_int_arg(const char *opt, const char *s, int64_t min, int64_t max,
                          int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "guestdump: %s: invalid value '%s'\n", opt, s);
        return false;
    }
    *out = v;
    return true;
}

static const char *const ignored_with_arg[] = {
    "display", "accel", "cpu", "vga", "serial", "parallel", "boot", "rtc",
    "global", "object", "msg", "overcommit", "sandbox", "uuid",
    "D", "d", "L", "k", "vnc", "spice", "audiodev", NULL,
};
static const char *const ignored_flags[] = {
    "nodefaults", "nographic", "no-user-config", "enable-kvm", "no-reboot",
    "no-shutdown", "no-hpet", "snapshot", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++) {
        if (!strcmp(*list, s)) {
            return true;
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    MachineOptions mo = { .smp = 1, .devices = g_ptr_array_new_with_free_func(g_free) };
    Error *err = NULL;
    int ret = 1;
    bool daemonize = false;
    bool uses_stdio = false;
    g_autofree char *pidfile = NULL;
    bool pidfile_written = false;

    signal(SIGPIPE, SIG_IGN);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-') {
            fprintf(stderr, "guestdump: %s: invalid option\n", arg);
            goto out;
        }
        /* QEMU accepts "--opt" as well as "-opt". */
        const char *name = arg[1] == '-' ? arg + 2 : arg + 1;
        bool takes_arg =
            !strcmp(name, "qmp") || !strcmp(name, "monitor") ||
            !strcmp(name, "chardev") || !strcmp(name, "mon") || !strcmp(name, "name") ||
            !strcmp(name, "m") || !strcmp(name, "smp") || !strcmp(name, "machine") ||
            !strcmp(name, "M") || !strcmp(name, "bios") || !strcmp(name, "demo-seed") ||
            !strcmp(name, "restore") || !strcmp(name, "restore-max-ram") ||
            !strcmp(name, "device") ||
            !strcmp(name, "qtest") || !strcmp(name, "pidfile") ||
            !strcmp(name, "dump-threads") || in_list(ignored_with_arg, name);
        const char *val = NULL;
        if (takes_arg) {
            if (i + 1 >= argc) {
                fprintf(stderr, "guestdump: %s: requires an argument\n", arg);
                goto out;
            }
            val = argv[++i];
        }

        if (!strcmp(name, "h") || !strcmp(name, "help")) {
            fputs(usage_text, stdout);
            ret = 0;
            goto out;
        } else if (!strcmp(name, "version")) {
            printf("QEMU emulator version 7.2.0 (guestdump " GUESTDUMP_VERSION ")\n"
                   "guestdump: QEMU 7.2's guest-memory dump subsystem and a host "
                   "around it; GPL-2.0-or-later\n");
            ret = 0;
            goto out;
        } else if (!strcmp(name, "S")) {
            mo.start_paused = true;
        } else if (!strcmp(name, "name")) {
            /* Only shown nowhere yet; accepted because libvirt always passes it. */
        } else if (!strcmp(name, "qmp")) {
            uses_stdio |= g_str_has_prefix(val, "stdio");
            if (!monitor_add_qmp(val, &err)) {
                goto fail;
            }
        } else if (!strcmp(name, "monitor")) {
            uses_stdio |= g_str_has_prefix(val, "stdio");
            if (strcmp(val, "none") && !monitor_add_hmp(val, &err)) {
                goto fail;
            }
        } else if (!strcmp(name, "chardev")) {
            if (!monitor_chardev_add(val, &err)) {
                goto fail;
            }
        } else if (!strcmp(name, "mon")) {
            if (!monitor_mon_add(val, &err)) {
                goto fail;
            }
        } else if (!strcmp(name, "m")) {
            g_autofree char *size = opt_get(val, "size", true);
            if (!size || !parse_size(size, &mo.ram_size) || mo.ram_size == 0) {
                fprintf(stderr, "guestdump: -m %s: invalid RAM size\n", val);
                goto out;
            }
        } else if (!strcmp(name, "smp")) {
            g_autofree char *cpus = opt_get(val, "cpus", true);
            int64_t n = 1;
            if (cpus) {
                if (!parse_int_arg("-smp", cpus, 1, 4096, &n)) {
                    goto out;
                }
            } else {
                /* No count: the topology's product, as QEMU computes it. */
                static const char *const parts[] = { "sockets", "dies", "cores",
                                                     "threads", NULL };
                for (const char *const *k = parts; *k; k++) {
                    g_autofree char *v = opt_get(val, *k, false);
                    int64_t f;
                    if (v && !parse_int_arg("-smp", v, 1, 4096, &f)) {
                        goto out;
                    }
                    n *= v ? f : 1;
                }
                if (n > 4096) {
                    fprintf(stderr, "guestdump: -smp %s: too many CPUs\n", val);
                    goto out;
                }
            }
            mo.smp = n;
        } else if (!strcmp(name, "machine") || !strcmp(name, "M")) {
            g_autofree char *type = opt_get(val, "type", true);
            if (type) {
                g_free(mo.machine_type);
                mo.machine_type = g_strdup(type);
            }
            /* accel=qtest/tcg/kvm and other properties change nothing here. */
        } else if (!strcmp(name, "bios")) {
            g_free(mo.bios);
            mo.bios = g_strdup(val);
        } else if (!strcmp(name, "demo")) {
            mo.demo = true;
        } else if (!strcmp(name, "demo-write-load")) {
            mo.demo_write_load = true;
        } else if (!strcmp(name, "demo-seed")) {
            int64_t n;
            if (!parse_int_arg("-demo-seed", val, 0, INT64_MAX, &n)) {
                goto out;
            }
            mo.demo_seed = n;
        } else if (!strcmp(name, "restore")) {
            g_free(mo.restore);
            mo.restore = g_strdup(val);
        } else if (!strcmp(name, "restore-max-ram")) {
            if (!parse_size(val, &mo.restore_max_ram) || mo.restore_max_ram == 0 ||
                mo.restore_max_ram > RESTORE_MAX_RAM_LIMIT) {
                fprintf(stderr, "guestdump: -restore-max-ram %s: invalid size (up to "
                        "%lluT)\n", val, RESTORE_MAX_RAM_LIMIT >> 40);
                goto out;
            }
        } else if (!strcmp(name, "device")) {
            g_ptr_array_add(mo.devices, g_strdup(val));
        } else if (!strcmp(name, "qtest")) {
            g_free(mo.qtest);
            mo.qtest = g_strdup(val);
        } else if (!strcmp(name, "daemonize")) {
            daemonize = true;
        } else if (!strcmp(name, "pidfile")) {
            g_free(pidfile);
            pidfile = g_strdup(val);
        } else if (!strcmp(name, "dump-threads")) {
            int64_t n;
            if (!parse_int_arg("-dump-threads", val, 1, 1024, &n)) {
                goto out;
            }
            dump_set_thread_count(n);
        } else if (in_list(ignored_flags, name) || in_list(ignored_with_arg, name)) {
            /* Accepted so that libvirt's and scripts' command lines work. */
        } else {
            fprintf(stderr, "guestdump: %s: invalid option\n", arg);
            goto out;
        }
    }

    if (daemonize && uses_stdio) {
        fprintf(stderr, "guestdump: cannot use stdio with -daemonize\n");
        goto out;
    }
    loop = g_main_loop_new(NULL, FALSE);
    runstate_set_main_loop(loop);

    if (!machine_init(&mo, &err)) {
        goto fail;
    }
    if (!monitor_start(&err)) {
        machine_cleanup();
        goto fail;
    }
    int ready_fd = -1;
    if (daemonize) {
        /*
         * As QEMU: the parent returns only once the child listens and has
         * written its pid file, so a script may connect as soon as
         * "guestdump -daemonize" has exited.
         */
        int ready[2];
        pid_t child = pipe(ready) < 0 ? -1 : fork();
        if (child < 0) {
            error_setg_errno(&err, errno, "cannot daemonize");
            monitor_cleanup();
            machine_cleanup();
            goto fail;
        }
        if (child > 0) {
            char c;
            close(ready[1]);
            _exit(read(ready[0], &c, 1) == 1 ? 0 : 1);
        }
        close(ready[0]);
        ready_fd = ready[1];
        setsid();
    }
    if (pidfile) {
        g_autofree char *text = g_strdup_printf("%d\n", (int)getpid());
        GError *gerr = NULL;
        if (!g_file_set_contents(pidfile, text, -1, &gerr)) {
            error_setg(&err, "cannot create PID file: %s", gerr->message);
            g_error_free(gerr);
            monitor_cleanup();
            machine_cleanup();
            goto fail;
        }
        pidfile_written = true;
    }
    if (ready_fd >= 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            if (null > STDERR_FILENO) {
                close(null);
            }
        }
        if (write(ready_fd, "", 1) != 1) {
            /* The parent is gone; nobody waits for us, which is fine. */
        }
        close(ready_fd);
    }
    g_unix_signal_add(SIGTERM, on_signal, GINT_TO_POINTER(SIGTERM));
    g_unix_signal_add(SIGINT, on_signal, GINT_TO_POINTER(SIGINT));
    g_unix_signal_add(SIGHUP, on_signal, GINT_TO_POINTER(SIGHUP));
    chain_exit_signals();

    if (!mo.start_paused) {
        vm_start();
    }
    if (!runstate_shutdown_requested()) {
        g_main_loop_run(loop);
    }

    /* The dump worker may still write; stop it before anything it uses goes. */
    dump_shutdown();
    monitor_cleanup();
    machine_cleanup();
    if (pidfile_written) {
        unlink(pidfile);
    }
    ret = 0;
    goto out;

fail:
    error_report_err(err);
    monitor_cleanup();
out:
    if (loop) {
        g_main_loop_unref(loop);
    }
    g_free(mo.machine_type);
    g_free(mo.bios);
    g_free(mo.restore);
    g_free(mo.qtest);
    g_ptr_array_free(mo.devices, TRUE);
    return ret;
}
