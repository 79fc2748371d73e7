/* qtests of dump-guest-memory: arguments, errors, fds, detach, events, faults. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-host.h"
#include "libqtest.h"
#include "system/demo.h"

#define DEMO_ARGS "-demo -m 64 -smp 2"
#define RAM_64M_PC 67371008      /* 64 MiB pc guest incl. pc.bios/pc.rom, as QEMU */

/* ---------------------------------------------------------------------- */
/* Helpers                                                                  */
/* ---------------------------------------------------------------------- */

static char *tmp_file(QTestState *s, const char *name)
{
    return g_build_filename(qtest_tmpdir(s), name, NULL);
}

/* dump-guest-memory with the given JSON arguments (without braces). */
static JsonObject *dump(QTestState *s, const char *args)
{
    return qtest_qmp(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": {%s}}",
                     args);
}

static JsonObject *dump_to(QTestState *s, const char *path, const char *more)
{
    g_autofree char *proto = g_strconcat("file:", path, NULL);
    g_autofree char *q = qtest_json_str(proto);
    g_autofree char *args = g_strdup_printf("\"paging\": false, \"protocol\": %s%s%s",
                                            q, more ? ", " : "", more ? more : "");

    return dump(s, args);
}

static void assert_error(JsonObject *rsp, const char *desc)
{
    g_assert_nonnull(rsp);
    g_assert_cmpstr(qtest_error_class(rsp), ==, "GenericError");
    g_assert_cmpstr(qtest_error_desc(rsp), ==, desc);
    json_object_unref(rsp);
}

typedef struct DumpStatusInfo {
    char status[16];
    int64_t completed, total;
} DumpStatusInfo;

static DumpStatusInfo query_dump(QTestState *s)
{
    JsonNode *ret = qtest_qmp_assert_success_ref(s, "{\"execute\": \"query-dump\"}");
    JsonObject *o = json_node_get_object(ret);
    DumpStatusInfo info;

    g_strlcpy(info.status, json_object_get_string_member(o, "status"),
              sizeof(info.status));
    info.completed = json_object_get_int_member(o, "completed");
    info.total = json_object_get_int_member(o, "total");
    json_node_unref(ret);
    return info;
}

/* Checks DUMP_COMPLETED's data; returns the error text (g_free) or NULL. */
static char *wait_completed(QTestState *s, const char *status)
{
    JsonObject *ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    JsonObject *data = json_object_get_object_member(ev, "data");
    JsonObject *res = json_object_get_object_member(data, "result");
    char *err = NULL;

    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, status);
    if (json_object_has_member(data, "error")) {
        err = g_strdup(json_object_get_string_member(data, "error"));
    }
    if (!strcmp(status, "completed")) {
        g_assert_null(err);
        g_assert_cmpint(json_object_get_int_member(res, "completed"), ==,
                        json_object_get_int_member(res, "total"));
    } else {
        g_assert_nonnull(err);
    }
    json_object_unref(ev);
    return err;
}

/* A readable ELF core: magic, ET_CORE, and readelf (if present) has no complaint. */
static void check_elf_file(const char *path, uint64_t expect_ram)
{
    g_autofree gchar *data = NULL;
    g_autofree char *readelf = g_find_program_in_path("readelf");
    gsize len;
    const Elf64_Ehdr *e;
    const Elf64_Phdr *ph;
    uint64_t filesz_max = 0;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, >, sizeof(Elf64_Ehdr));
    e = (const Elf64_Ehdr *)data;
    g_assert_cmpmem(e->e_ident, 4, ELFMAG, 4);
    g_assert_cmpint(e->e_ident[EI_CLASS], ==, ELFCLASS64);
    g_assert_cmpuint(e->e_type, ==, ET_CORE);
    g_assert_cmpuint(e->e_ehsize, ==, sizeof(Elf64_Ehdr));
    g_assert_cmpuint(e->e_phoff, ==, sizeof(Elf64_Ehdr));
    ph = (const Elf64_Phdr *)(data + e->e_phoff);
    g_assert_cmpuint(ph[0].p_type, ==, PT_NOTE);
    for (int i = 1; i < e->e_phnum; i++) {
        if (ph[i].p_filesz) {
            filesz_max = MAX(filesz_max, ph[i].p_offset + ph[i].p_filesz);
        }
    }
    g_assert_cmpuint(filesz_max, <=, len - 11);
    if (expect_ram) {
        g_assert_cmpuint(len, ==, ph[0].p_offset + ph[0].p_filesz + expect_ram + 11);
    }
    if (readelf) {
        g_autofree char *out = NULL, *err = NULL;
        const char *argv[] = { readelf, "-a", "-W", path, NULL };
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL,
                                   NULL, &out, &err, &status, NULL));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_cmpstr(err, ==, "");
    } else {
        g_test_skip("readelf not installed");
    }
}

/* File offset of guest-physical gpa in a paging=false ELF (or -1). */
static int64_t elf_offset_of(const gchar *data, uint64_t gpa)
{
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)data;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + e->e_phoff);

    for (int i = 1; i < e->e_phnum; i++) {
        if (gpa >= ph[i].p_paddr && gpa - ph[i].p_paddr < ph[i].p_filesz) {
            return ph[i].p_offset + (gpa - ph[i].p_paddr);
        }
    }
    return -1;
}

static int pass_fd(QTestState *s, int fd, const char *name)
{
    JsonObject *rsp = qtest_qmp_fds(s, &fd, 1,
        "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"%s\"}}", name);

    qtest_assert_ok(rsp);
    return 0;
}

/* Reads everything from fd until EOF, polling query-dump meanwhile. */
static GByteArray *drain_pipe(QTestState *s, int fd, bool poll_status)
{
    GByteArray *buf = g_byte_array_new();
    uint8_t chunk[65536];
    int64_t last_completed = 0;

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 50) == 0) {
            if (poll_status) {
                DumpStatusInfo q = query_dump(s);

                g_assert_true(!strcmp(q.status, "active") ||
                              !strcmp(q.status, "completed"));
                g_assert_cmpint(q.completed, >=, last_completed);
                g_assert_cmpint(q.completed, <=, q.total);
                last_completed = q.completed;
            }
            continue;
        }
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >=, 0);
        if (n == 0) {
            break;
        }
        g_byte_array_append(buf, chunk, n);
    }
    return buf;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                    */
/* ---------------------------------------------------------------------- */

static void test_capability(void)
{
    QTestState *s = qtest_init("-M none -m 2");
    JsonNode *ret = qtest_qmp_assert_success_ref(s,
        "{\"execute\": \"query-dump-guest-memory-capability\"}");
    JsonArray *f = json_object_get_array_member(json_node_get_object(ret), "formats");
    GString *got = g_string_new(NULL);
    GString *want = g_string_new("elf kdump-zlib kdump-raw-zlib");

    for (guint i = 0; i < json_array_get_length(f); i++) {
        g_string_append_printf(got, "%s%s", i ? " " : "",
                               json_array_get_string_element(f, i));
    }
#ifdef CONFIG_LZO
    g_string_append(want, " kdump-lzo kdump-raw-lzo");
#endif
#ifdef CONFIG_SNAPPY
    g_string_append(want, " kdump-snappy kdump-raw-snappy");
#endif
    g_string_append(want, " win-dmp");
#ifdef CONFIG_ZSTD
    g_string_append(want, " kdump-zstd kdump-raw-zstd");
#endif
    g_assert_cmpstr(got->str, ==, want->str);
    g_string_free(got, TRUE);
    g_string_free(want, TRUE);
    json_node_unref(ret);
    qtest_quit(s);
}

/* Reference 2.1, in 7.2's order; nothing may be created by a refused command. */
static void test_errors(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "refused.elf");
    g_autofree char *qf = NULL;
    g_autofree char *proto = g_strconcat("file:", f, NULL);
    g_autofree char *args = NULL;
    DumpStatusInfo q;

    qf = qtest_json_str(proto);
    q = query_dump(s);
    g_assert_cmpstr(q.status, ==, "none");
    g_assert_cmpint(q.completed, ==, 0);
    g_assert_cmpint(q.total, ==, 0);

#define REFUSED(a, text) do { \
        args = g_strdup_printf(a, qf); \
        assert_error(dump(s, args), text); \
        g_free(args); \
        args = NULL; \
        g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS)); \
    } while (0)

    REFUSED("\"paging\": true, \"protocol\": %s, \"format\": \"kdump-zlib\"",
            "kdump-compressed format doesn't support paging or filter");
    REFUSED("\"paging\": false, \"protocol\": %s, \"format\": \"kdump-zlib\", "
            "\"begin\": 0, \"length\": 4096",
            "kdump-compressed format doesn't support paging or filter");
    REFUSED("\"paging\": false, \"protocol\": %s, \"format\": \"win-dmp\", "
            "\"length\": 4096",
            "kdump-compressed format doesn't support paging or filter");
    REFUSED("\"paging\": false, \"protocol\": %s, \"begin\": 0",
            "Parameter 'length' is missing");
    REFUSED("\"paging\": false, \"protocol\": %s, \"length\": 4096",
            "Parameter 'begin' is missing");
#ifndef CONFIG_LZO
    REFUSED("\"paging\": false, \"protocol\": %s, \"format\": \"kdump-lzo\"",
            "kdump-lzo is not available now");
    REFUSED("\"paging\": false, \"protocol\": %s, \"format\": \"kdump-raw-lzo\"",
            "kdump-lzo is not available now");
#endif
#ifndef CONFIG_SNAPPY
    REFUSED("\"paging\": false, \"protocol\": %s, \"format\": \"kdump-snappy\"",
            "kdump-snappy is not available now");
#endif
    /* Argument errors leave query-dump alone. */
    q = query_dump(s);
    g_assert_cmpstr(q.status, ==, "none");

    assert_error(dump(s, "\"paging\": false, \"protocol\": \"fd:nosuch\""),
                 "File descriptor named 'nosuch' has not been found");
    assert_error(dump(s, "\"paging\": false, \"protocol\": \"tcp:1.2.3.4\""),
                 "Invalid parameter 'protocol'");
    assert_error(dump(s, "\"paging\": false, \"protocol\": \"file:/nonexistent/d/x\""),
                 "Could not open '/nonexistent/d/x': No such file or directory");

    /* dump_init's checks, run before the file exists (docs/compat.md). */
    REFUSED("\"paging\": false, \"protocol\": %s, \"begin\": 0, \"length\": 0",
            "Invalid parameter 'length'");
    q = query_dump(s);
    g_assert_cmpstr(q.status, ==, "failed");
    g_assert_cmpint(q.completed, ==, 0);
    g_assert_cmpint(q.total, ==, 0);
    REFUSED("\"paging\": false, \"protocol\": %s, \"begin\": 17592186044416, "
            "\"length\": 4096", "dump: no guest memory to dump");
    REFUSED("\"paging\": true, \"protocol\": %s, \"begin\": 4096, \"length\": -1",
            "dump: no guest memory to dump");
    REFUSED("\"paging\": false, \"protocol\": %s, \"begin\": -4096, \"length\": 8192",
            "Invalid parameter 'begin'");
#undef REFUSED

    /* No event for any of these (reference 2.6). */
    g_assert_null(qtest_qmp_event_poll(s, "DUMP_COMPLETED", 100));
    /* The guest was never paused. */
    {
        g_autofree char *st = qtest_run_status(s);
        g_assert_cmpstr(st, ==, "running");
    }
    qtest_quit(s);
}

/* Sync ELF dump of a running guest: event before the reply, guest resumed. */
static void test_sync_elf(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "sync.elf");
    g_autofree char *st = NULL;
    GStatBuf sb;
    DumpStatusInfo q;

    qtest_assert_ok(dump_to(s, f, NULL));
    g_free(wait_completed(s, "completed"));
    q = query_dump(s);
    g_assert_cmpstr(q.status, ==, "completed");
    g_assert_cmpint(q.completed, ==, RAM_64M_PC);
    g_assert_cmpint(q.total, ==, RAM_64M_PC);
    g_assert_cmpint(g_stat(f, &sb), ==, 0);
    g_assert_cmpint(sb.st_mode & 0777, ==, 0400 & ~0022);
    check_elf_file(f, RAM_64M_PC);
    st = qtest_run_status(s);
    g_assert_cmpstr(st, ==, "running");
    qtest_quit(s);
}

/* A paused guest stays paused; the dump reuses nothing of the last one. */
static void test_paused_stays_paused(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "paused.elf");
    g_autofree char *f2 = tmp_file(s, "paused2.elf");
    g_autofree char *st = NULL;

    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    g_assert_nonnull(qtest_qmp_event_wait(s, "STOP"));
    qtest_assert_ok(dump_to(s, f, "\"detach\": true"));
    g_free(wait_completed(s, "completed"));
    qtest_assert_ok(dump_to(s, f2, NULL));
    g_free(wait_completed(s, "completed"));
    g_assert_null(qtest_qmp_event_poll(s, "RESUME", 200));
    st = qtest_run_status(s);
    g_assert_cmpstr(st, ==, "paused");
    check_elf_file(f, RAM_64M_PC);
    qtest_quit(s);
}

/*
 * Detached dump of a running guest: query-dump polls, the event, and the
 * tick page is consistent with the log (the guest was paused throughout).
 */
static void test_detach_no_tear(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "detach.elf");
    g_autofree gchar *data = NULL;
    gsize len;
    int64_t off, log_off;
    uint64_t first, ticks_in_log;
    DumpStatusInfo q;

    g_usleep(100 * 1000);      /* let the guest tick a few times */
    qtest_assert_ok(dump_to(s, f, "\"detach\": true"));
    do {
        q = query_dump(s);
        g_assert_cmpint(q.total, ==, RAM_64M_PC);
    } while (!strcmp(q.status, "active"));
    g_assert_cmpstr(q.status, ==, "completed");
    g_free(wait_completed(s, "completed"));
    g_assert_true(g_file_get_contents(f, &data, &len, NULL));
    off = elf_offset_of(data, DEMO_TICK_PHYS);
    log_off = elf_offset_of(data, DEMO_LOG_PHYS);
    g_assert_cmpint(off, >, 0);
    g_assert_cmpmem(data + off, 8, "GDTICK01", 8);
    memcpy(&first, data + off + 8, 8);
    g_assert_cmpuint(first, >, 0);
    for (int i = 2; i < 512; i++) {
        uint64_t v;

        memcpy(&v, data + off + i * 8, 8);
        g_assert_cmpuint(v, ==, first);
    }
    memcpy(&ticks_in_log, data + log_off + 16, 8);
    g_assert_cmpuint(ticks_in_log, ==, first);
    qtest_quit(s);
}

/* libvirt's sequence: capabilities, getfd of a pipe, detached fd: dump, poll, event. */
static void test_libvirt_sequence(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    JsonNode *cap = qtest_qmp_assert_success_ref(s,
        "{\"execute\": \"query-dump-guest-memory-capability\"}");
    GByteArray *got;
    int fds[2];
    int before = qtest_count_fds(s);
    const Elf64_Ehdr *e;
    const Elf64_Phdr *ph;

    json_node_unref(cap);
    g_assert_cmpint(pipe(fds), ==, 0);
    pass_fd(s, fds[1], "migrate");
    close(fds[1]);
    qtest_assert_ok(dump(s, "\"paging\": false, \"protocol\": \"fd:migrate\", "
                      "\"detach\": true, \"format\": \"elf\""));
    got = drain_pipe(s, fds[0], true);
    close(fds[0]);
    g_free(wait_completed(s, "completed"));
    g_assert_cmpuint(got->len, >, RAM_64M_PC);
    e = (const Elf64_Ehdr *)got->data;
    g_assert_cmpmem(e->e_ident, 4, ELFMAG, 4);
    ph = (const Elf64_Phdr *)(got->data + e->e_phoff);
    g_assert_cmpuint(got->len, ==, ph[0].p_offset + ph[0].p_filesz + RAM_64M_PC + 11);
    g_byte_array_unref(got);
    /* The fd was consumed and closed: no leak, and the name is gone. */
    g_assert_cmpint(qtest_count_fds(s), ==, before);
    assert_error(dump(s, "\"paging\": false, \"protocol\": \"fd:migrate\""),
                 "File descriptor named 'migrate' has not been found");
    qtest_quit(s);
}

/* fd: protocol with a regular file; /dev/fdset/N through add-fd. */
static void test_fd_file_and_fdset(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "byfd.elf");
    g_autofree char *g = tmp_file(s, "byfdset.elf");
    int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    JsonObject *rsp;

    g_assert_cmpint(fd, >=, 0);
    pass_fd(s, fd, "file1");
    close(fd);
    qtest_assert_ok(dump(s, "\"paging\": true, \"protocol\": \"fd:file1\""));
    g_free(wait_completed(s, "completed"));
    check_elf_file(f, RAM_64M_PC);

    fd = open(g, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, "stale bytes", 11), ==, 11);
    rsp = qtest_qmp_fds(s, &fd, 1,
        "{\"execute\": \"add-fd\", \"arguments\": {\"fdset-id\": 3}}");
    qtest_assert_ok(rsp);
    close(fd);
    qtest_assert_ok(dump(s, "\"paging\": false, \"protocol\": \"file:/dev/fdset/3\""));
    g_free(wait_completed(s, "completed"));
    check_elf_file(g, RAM_64M_PC);
    assert_error(dump(s, "\"paging\": false, \"protocol\": \"file:/dev/fdset/7\""),
                 "Could not open '/dev/fdset/7': No such file or directory");
    qtest_quit(s);
}

/* A reader that goes away: the dump fails cleanly, the host serves on. */
static void test_pipe_reader_exits(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "after.elf");
    g_autofree char *err = NULL;
    g_autofree char *st = NULL;
    uint8_t buf[65536];
    size_t total = 0;
    int fds[2];
    int before = qtest_count_fds(s);

    g_assert_cmpint(pipe(fds), ==, 0);
    pass_fd(s, fds[1], "early");
    close(fds[1]);
    qtest_assert_ok(dump(s, "\"paging\": false, \"protocol\": \"fd:early\", "
                      "\"detach\": true"));
    while (total < (1u << 20)) {
        ssize_t n = read(fds[0], buf, sizeof(buf));

        g_assert_cmpint(n, >, 0);
        total += n;
    }
    close(fds[0]);
    err = wait_completed(s, "failed");
    g_assert_cmpstr(err, ==, "dump: failed to save memory: Broken pipe");
    g_assert_cmpstr(query_dump(s).status, ==, "failed");
    g_assert_nonnull(qtest_qmp_event_wait(s, "RESUME"));
    st = qtest_run_status(s);
    g_assert_cmpstr(st, ==, "running");
    g_assert_cmpint(qtest_count_fds(s), ==, before);

    /* And right away with the writer gone before the first byte. */
    g_assert_cmpint(pipe(fds), ==, 0);
    pass_fd(s, fds[1], "gone");
    close(fds[1]);
    close(fds[0]);
    assert_error(dump(s, "\"paging\": false, \"protocol\": \"fd:gone\""),
                 "dump: failed to write elf header: Broken pipe");
    g_free(wait_completed(s, "failed"));

    qtest_assert_ok(dump_to(s, f, NULL));
    g_free(wait_completed(s, "completed"));
    check_elf_file(f, RAM_64M_PC);
    qtest_quit(s);
}

/* ENOSPC on a 1 MiB tmpfs: failed, file removed, next dump fine (root only). */
static void test_full_tmpfs(void)
{
    QTestState *s;
    g_autofree char *mnt = NULL, *f = NULL, *f2 = NULL;
    g_autofree char *err = NULL;
    const char *mount_argv[] = { "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                 NULL, NULL };
    int status;

    if (geteuid() != 0) {
        g_test_skip("needs root to mount a small tmpfs");
        return;
    }
    s = qtest_init(DEMO_ARGS);
    mnt = tmp_file(s, "small");
    g_assert_cmpint(g_mkdir(mnt, 0700), ==, 0);
    mount_argv[6] = mnt;
    if (!g_spawn_sync(NULL, (char **)mount_argv, NULL, G_SPAWN_SEARCH_PATH |
                      G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, NULL, NULL, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_test_skip("cannot mount tmpfs here");
        qtest_quit(s);
        return;
    }
    f = g_build_filename(mnt, "full.elf", NULL);
    {
        g_autofree char *proto = g_strconcat("file:", f, NULL);
        g_autofree char *q = qtest_json_str(proto);
        g_autofree char *args = g_strdup_printf("\"paging\": false, \"protocol\": %s",
                                                q);

        assert_error(dump(s, args), "dump: failed to save memory: "
                     "No space left on device");
    }
    err = wait_completed(s, "failed");
    g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS));
    {
        const char *umount_argv[] = { "umount", mnt, NULL };

        g_spawn_sync(NULL, (char **)umount_argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                     NULL, NULL, NULL, &status, NULL);
    }
    f2 = tmp_file(s, "fine.elf");
    qtest_assert_ok(dump_to(s, f2, NULL));
    g_free(wait_completed(s, "completed"));
    check_elf_file(f2, RAM_64M_PC);
    qtest_quit(s);
}

/*
 * file: naming a FIFO: without a reader the command fails at once instead
 * of blocking the monitor in open() (7.2 hangs); with one it is a stream.
 */
static void test_fifo(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "dump.fifo");
    g_autofree char *want = g_strdup_printf("Could not open '%s': a FIFO that no "
                                            "process is reading", f);
    g_autofree char *st = NULL;
    GByteArray *got;
    int rd, fl;

    g_assert_cmpint(mkfifo(f, 0600), ==, 0);
    assert_error(dump_to(s, f, NULL), want);
    assert_error(dump_to(s, f, "\"detach\": true"), want);
    st = qtest_run_status(s);
    g_assert_cmpstr(st, ==, "running");

    rd = open(f, O_RDONLY | O_NONBLOCK);
    g_assert_cmpint(rd, >=, 0);
    qtest_assert_ok(dump_to(s, f, "\"detach\": true"));
    fl = fcntl(rd, F_GETFL);
    g_assert_cmpint(fcntl(rd, F_SETFL, fl & ~O_NONBLOCK), ==, 0);
    got = drain_pipe(s, rd, false);
    close(rd);
    g_free(wait_completed(s, "completed"));
    g_assert_cmpuint(got->len, >, RAM_64M_PC);
    g_assert(memcmp(got->data, ELFMAG, SELFMAG) == 0);
    g_byte_array_unref(got);
    unlink(f);
    qtest_quit(s);
}

/*
 * A kdump whose flat header cannot be written fails as a dump, as on 7.2
 * (checked with qemu-system-x86_64 7.2 on file:/dev/full): detached, `{}`
 * and then DUMP_COMPLETED with the error; in the foreground, the error and
 * the event. The ELF header's failure behaves the same, with strerror.
 */
static void test_first_write_fails(void)
{
    QTestState *s;
    static const struct {
        const char *format, *error;
    } cases[] = {
        { "kdump-zlib", "dump: failed to write start flat header" },
        { "elf", "dump: failed to write elf header: No space left on device" },
    };

    if (!g_file_test("/dev/full", G_FILE_TEST_EXISTS)) {
        g_test_skip("no /dev/full");
        return;
    }
    s = qtest_init(DEMO_ARGS);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *fmt = g_strdup_printf("\"format\": \"%s\"",
                                               cases[i].format);
        g_autofree char *detached = g_strdup_printf("%s, \"detach\": true", fmt);
        g_autofree char *err = NULL;
        DumpStatusInfo q;

        qtest_assert_ok(dump_to(s, "/dev/full", detached));
        err = wait_completed(s, "failed");
        g_assert_cmpstr(err, ==, cases[i].error);
        q = query_dump(s);
        g_assert_cmpstr(q.status, ==, "failed");
        g_assert_cmpint(q.completed, ==, 0);
        g_assert_cmpint(q.total, ==, RAM_64M_PC);
        g_clear_pointer(&err, g_free);

        assert_error(dump_to(s, "/dev/full", fmt), cases[i].error);
        err = wait_completed(s, "failed");
        g_assert_cmpstr(err, ==, cases[i].error);
    }
    qtest_quit(s);
}

/* While a dump is active: a second dump, stop and cont are refused; info dump. */
static void test_busy(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *info = NULL;
    GByteArray *got;
    int fds[2];

    g_assert_cmpint(pipe(fds), ==, 0);
    pass_fd(s, fds[1], "slow");
    close(fds[1]);
    qtest_assert_ok(dump(s, "\"paging\": false, \"protocol\": \"fd:slow\", "
                      "\"detach\": true"));
    g_assert_cmpstr(query_dump(s).status, ==, "active");
    assert_error(dump(s, "\"paging\": false, \"protocol\": \"file:/nonexistent\""),
                 "There is a dump in process, please wait.");
    assert_error(qtest_qmp(s, "{\"execute\": \"stop\"}"),
                 "There is a dump in process, please wait.");
    assert_error(qtest_qmp(s, "{\"execute\": \"cont\"}"),
                 "There is a dump in process, please wait.");
    info = qtest_hmp(s, "info dump");
    g_assert_true(g_str_has_prefix(info, "Status: active\r\nFinished: ") ||
                  g_str_has_prefix(info, "Status: active\nFinished: "));
    g_assert_nonnull(strstr(info, " %"));
    got = drain_pipe(s, fds[0], false);
    close(fds[0]);
    g_byte_array_unref(got);
    g_free(wait_completed(s, "completed"));
    g_free(info);
    info = qtest_hmp(s, "info dump");
    g_assert_true(g_str_has_prefix(info, "Status: completed"));
    qtest_quit(s);
}

/* quit while a detached dump is stuck on a full pipe: prompt, clean exit. */
static void test_quit_during_dump(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    int fds[2];
    gint64 t0;

    g_assert_cmpint(pipe(fds), ==, 0);
    pass_fd(s, fds[1], "stuck");
    close(fds[1]);
    qtest_assert_ok(dump(s, "\"paging\": false, \"protocol\": \"fd:stuck\", "
                      "\"detach\": true"));
    g_assert_cmpstr(query_dump(s).status, ==, "active");
    t0 = g_get_monotonic_time();
    qtest_quit(s);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
    close(fds[0]);
}

/*
 * quit cancels a detached dump with one text whatever the worker was doing:
 * blocked writing to a full pipe (ELF), or between compressed batches.
 */
static void test_quit_cancel_text(void)
{
    static const char *const formats[] = { "elf", "kdump-zlib", "kdump-raw-zlib" };

    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        QTestState *s = qtest_init(DEMO_ARGS);
        g_autofree char *args = NULL;
        JsonObject *ev, *data;
        int fds[2];

        if (!strcmp(formats[i], "kdump-raw-zlib")) {
            /* a seekable file that fills slowly: the worker is mid-pages */
            g_autofree char *f = tmp_file(s, "raw.kdump");
            g_autofree char *proto = g_strconcat("file:", f, NULL);
            g_autofree char *q = qtest_json_str(proto);

            args = g_strdup_printf("\"paging\": false, \"protocol\": %s, "
                                   "\"format\": \"%s\", \"detach\": true",
                                   q, formats[i]);
            fds[0] = fds[1] = -1;
        } else {
            g_assert_cmpint(pipe(fds), ==, 0);
            pass_fd(s, fds[1], "stuck");
            close(fds[1]);
            args = g_strdup_printf("\"paging\": false, \"protocol\": \"fd:stuck\", "
                                   "\"format\": \"%s\", \"detach\": true",
                                   formats[i]);
        }
        qtest_assert_ok(dump(s, args));
        /* let the worker fill the pipe and block in write() */
        g_usleep(200 * 1000);
        qtest_assert_ok(qtest_qmp(s, "{\"execute\": \"quit\"}"));
        ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
        data = json_object_get_object_member(ev, "data");
        if (json_object_has_member(data, "error")) {
            g_assert_cmpstr(json_object_get_string_member(data, "error"), ==,
                            "dump: cancelled");
        } else {
            /* the raw file may be complete before quit arrives */
            g_assert_cmpstr(formats[i], ==, "kdump-raw-zlib");
        }
        json_object_unref(ev);
        qtest_quit(s);
        if (fds[0] >= 0) {
            close(fds[0]);
        }
    }
}

/* The begin/length filter: only that range, counted as QEMU counts it. */
static void test_filter(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "filter.elf");
    g_autofree gchar *data = NULL;
    gsize len;
    const Elf64_Ehdr *e;
    const Elf64_Phdr *ph;
    DumpStatusInfo q;

    qtest_assert_ok(dump_to(s, f, "\"begin\": 651264, \"length\": 139264"));
    g_free(wait_completed(s, "completed"));
    q = query_dump(s);
    g_assert_cmpint(q.total, ==, 139264);
    g_assert_true(g_file_get_contents(f, &data, &len, NULL));
    e = (const Elf64_Ehdr *)data;
    ph = (const Elf64_Phdr *)(data + e->e_phoff);
    /* Reference 3.12's filtered example: RAM below 0xc0000, then pc.rom. */
    g_assert_cmpuint(e->e_phnum, ==, 3);
    g_assert_cmphex(ph[1].p_paddr, ==, 0x9f000);
    g_assert_cmphex(ph[1].p_filesz, ==, 0x21000);
    g_assert_cmphex(ph[2].p_paddr, ==, 0xc0000);
    g_assert_cmphex(ph[2].p_filesz, ==, 0x1000);
    g_assert_cmpuint(ph[2].p_offset, ==, ph[1].p_offset + 0x21000);
    check_elf_file(f, 139264);
    qtest_quit(s);
}

/* HMP: the flags, the one-format rule, the /dev/fdset path and info dump. */
static void test_hmp(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "hmp.elf");
    g_autofree char *k = tmp_file(s, "hmp.kdump");
    char *out;

    out = qtest_hmp(s, "info dump");
    g_assert_cmpstr(out, ==, "Status: none\r\n");
    g_free(out);
    out = qtest_hmp(s, "dump-guest-memory -z -l %s", f);
    g_assert_cmpstr(out, ==, "Error: only one of '-z|-l|-s|-w' can be set\r\n");
    g_free(out);
    g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS));
    out = qtest_hmp(s, "dump-guest-memory -w -z %s", f);
    g_assert_cmpstr(out, ==, "Error: only one of '-z|-l|-s|-w' can be set\r\n");
    g_free(out);
    out = qtest_hmp(s, "dump-guest-memory -z -p %s", f);
    g_assert_true(g_str_has_prefix(out, "dump-guest-memory: unsupported option -p"));
    g_free(out);
    out = qtest_hmp(s, "dump-guest-memory -p %s", f);
    g_assert_cmpstr(out, ==, "");
    g_free(out);
    g_free(wait_completed(s, "completed"));
    check_elf_file(f, RAM_64M_PC);
    out = qtest_hmp(s, "dump-guest-memory -z %s", k);
    g_assert_cmpstr(out, ==, "");
    g_free(out);
    g_free(wait_completed(s, "completed"));
    {
        g_autofree gchar *data = NULL;
        gsize len;

        g_assert_true(g_file_get_contents(k, &data, &len, NULL));
        g_assert_cmpmem(data, 12, "makedumpfile", 12);
    }
    out = qtest_hmp(s, "dump-guest-memory %s 0 0", f);
    g_assert_cmpstr(out, ==, "Error: Invalid parameter 'length'\r\n");
    g_free(out);
    out = qtest_hmp(s, "info dump");
    g_assert_cmpstr(out, ==, "Status: failed\r\n");
    g_free(out);
    qtest_quit(s);
}

/* The sub-header's dump_level of a kdump-raw file. */
static uint32_t raw_dump_level(const char *path)
{
    g_autofree gchar *data = NULL;
    gsize len;
    uint32_t v;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, >, 4096 + 12);
    g_assert_cmpmem(data, 8, "KDUMP   ", 8);
    memcpy(&v, data + 4096 + 8, 4);
    return GUINT32_FROM_LE(v);
}

/*
 * dump-level (docs/compat.md, "dump-level"): its argument checks, the
 * refusal of a level the guest's VMCOREINFO cannot serve (the demo's has
 * no mem_section) with nothing left behind, and levels 0 and 1, which need
 * no struct pages: level 1 is the unfiltered file, as QEMU writes it.
 */
static void test_dump_level(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "level.kdump");
    g_autofree char *plain = tmp_file(s, "plain.kdump");
    g_autofree char *l1 = tmp_file(s, "l1.kdump");
    g_autofree char *l0 = tmp_file(s, "l0.kdump");
    g_autofree gchar *a = NULL, *b = NULL;
    gsize alen, blen;
    char *out;

    assert_error(dump_to(s, f, "\"format\": \"kdump-raw-zlib\", \"dump-level\": 32"),
                 "Parameter 'dump-level' expects an integer in the range 0 to 31");
    assert_error(dump_to(s, f, "\"format\": \"kdump-zlib\", \"dump-level\": -1"),
                 "Parameter 'dump-level' expects an integer in the range 0 to 31");
    assert_error(dump_to(s, f, "\"dump-level\": 1"),
                 "dump-level is only supported by the kdump formats");
    assert_error(dump_to(s, f, "\"format\": \"win-dmp\", \"dump-level\": 31"),
                 "dump-level is only supported by the kdump formats");
    g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS));
    assert_error(dump_to(s, f, "\"format\": \"kdump-raw-zlib\", \"dump-level\": 31"),
                 "dump: dump-level 31 needs SYMBOL(mem_section) in the guest's "
                 "VMCOREINFO");
    g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS));
    g_assert_cmpstr(query_dump(s).status, ==, "failed");

    qtest_assert_ok(dump_to(s, plain, "\"format\": \"kdump-raw-zlib\""));
    qtest_assert_ok(dump_to(s, l1, "\"format\": \"kdump-raw-zlib\", \"dump-level\": 1"));
    qtest_assert_ok(dump_to(s, l0, "\"format\": \"kdump-raw-zlib\", \"dump-level\": 0"));
    g_assert_cmpuint(raw_dump_level(plain), ==, 1);
    g_assert_cmpuint(raw_dump_level(l1), ==, 1);
    g_assert_cmpuint(raw_dump_level(l0), ==, 0);
    g_assert_true(g_file_get_contents(plain, &a, &alen, NULL));
    g_assert_true(g_file_get_contents(l1, &b, &blen, NULL));
    g_assert_cmpmem(a, alen, b, blen);
    g_free(b);
    /* Level 0 stores each zero page by itself, as makedumpfile -d 0 does. */
    g_assert_true(g_file_get_contents(l0, &b, &blen, NULL));
    g_assert_cmpuint(blen, >, alen);

    out = qtest_hmp(s, "dump-guest-memory -z -R -D 1 %s", f);
    g_assert_cmpstr(out, ==, "");
    g_free(out);
    g_free(wait_completed(s, "completed"));
    g_assert_cmpuint(raw_dump_level(f), ==, 1);
    unlink(f);
    out = qtest_hmp(s, "dump-guest-memory -z -R -D 40 %s", f);
    g_assert_cmpstr(out, ==, "Error: Parameter 'dump-level' expects an integer in "
                    "the range 0 to 31\r\n");
    g_free(out);
    out = qtest_hmp(s, "dump-guest-memory -z -D x %s", f);
    g_assert_true(g_str_has_prefix(out, "dump-guest-memory: integer expected"));
    g_free(out);
    out = qtest_hmp(s, "dump-guest-memory -z -D 2 %s", f);
    g_assert_cmpstr(out, ==, "Error: dump: dump-level 2 needs SYMBOL(mem_section) in "
                    "the guest's VMCOREINFO\r\n");
    g_free(out);
    g_assert_false(g_file_test(f, G_FILE_TEST_EXISTS));
    qtest_quit(s);
}

/* NUMBER(phys_base) is decimal in Linux's VMCOREINFO (QEMU reads it as hex). */
static void test_phys_base(void)
{
    QTestState *s = qtest_init_with_qtest(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "pb.kdump");
    g_autofree char *proto = NULL, *q = NULL, *args = NULL;
    const char *text = "OSRELEASE=6.1.0\nNUMBER(phys_base)=16777216\n";
    uint64_t note = DEMO_KERNEL_PHYS + DEMO_NOTE_OFF;
    g_autofree gchar *data = NULL;
    gsize len;
    uint64_t pb;
    char *line;

    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    /* Rewrite the guest's note text and descsz in place. */
    qtest_sendf(s, "writel 0x%" G_GINT64_MODIFIER "x 0x%zx\n", note + 4, strlen(text));
    line = qtest_recv_line(s);
    g_assert_cmpstr(line, ==, "OK");
    g_free(line);
    for (size_t i = 0; i < strlen(text) + 4; i++) {
        qtest_sendf(s, "writeb 0x%" G_GINT64_MODIFIER "x 0x%x\n", note + 24 + i,
                    i < strlen(text) ? (unsigned char)text[i] : 0);
        line = qtest_recv_line(s);
        g_assert_cmpstr(line, ==, "OK");
        g_free(line);
    }
    proto = g_strconcat("file:", f, NULL);
    q = qtest_json_str(proto);
    args = g_strdup_printf("\"paging\": false, \"protocol\": %s, "
                           "\"format\": \"kdump-raw-zlib\"", q);
    qtest_assert_ok(dump(s, args));
    g_free(wait_completed(s, "completed"));
    g_assert_true(g_file_get_contents(f, &data, &len, NULL));
    /* kdump_sub_header starts one block (4096) in; phys_base is its first field. */
    g_assert_cmpuint(len, >, 4096 + 8);
    memcpy(&pb, data + 4096, 8);
    g_assert_cmphex(pb, ==, 0x1000000);
    qtest_quit(s);
}

static uint64_t qtest_read(QTestState *s, const char *op, uint64_t gpa)
{
    g_autofree char *line = NULL;

    qtest_sendf(s, "%s 0x%" G_GINT64_MODIFIER "x\n", op, gpa);
    line = qtest_recv_line(s);
    g_assert_true(g_str_has_prefix(line, "OK "));
    return g_ascii_strtoull(line + 3, NULL, 16);
}

/*
 * QEMU stores a NUL right after the VMCOREINFO descriptor in its copy of the
 * note, and that byte is what the dump carries; the rest of the padding is
 * guest memory, and guest memory itself is not touched.
 */
static void test_note_nul(void)
{
    QTestState *s = qtest_init_with_qtest(DEMO_ARGS);
    g_autofree char *f = tmp_file(s, "nul.elf");
    g_autofree gchar *data = NULL;
    uint64_t note = DEMO_KERNEL_PHYS + DEMO_NOTE_OFF;
    uint32_t descsz;
    uint8_t mem[4];
    gsize len;
    const Elf64_Ehdr *e;
    const Elf64_Phdr *ph;
    const uint8_t *n;
    size_t off;
    char *line;

    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    descsz = qtest_read(s, "readl", note + 4);
    g_assert_cmpuint(descsz, >, 8);
    /* Shorten the descriptor so that its padding holds text bytes. */
    descsz -= (descsz % 4 == 2) ? 1 : 2 + (descsz % 4 == 0);
    g_assert_cmpuint(descsz % 4, !=, 0);
    qtest_sendf(s, "writel 0x%" G_GINT64_MODIFIER "x 0x%x\n", note + 4, descsz);
    line = qtest_recv_line(s);
    g_assert_cmpstr(line, ==, "OK");
    g_free(line);
    for (unsigned i = 0; i < 4; i++) {
        mem[i] = qtest_read(s, "readb", note + 24 + (descsz & ~3u) + i);
    }
    g_assert_cmpuint(mem[descsz % 4], !=, 0);
    qtest_assert_ok(dump_to(s, f, NULL));
    g_free(wait_completed(s, "completed"));

    g_assert_true(g_file_get_contents(f, &data, &len, NULL));
    e = (const Elf64_Ehdr *)data;
    ph = (const Elf64_Phdr *)(data + e->e_phoff);
    /* 2 x (CORE 356 + QEMU 460), then the guest note. */
    off = ph[0].p_offset + 2 * (356 + 460);
    n = (const uint8_t *)data + off;
    g_assert_cmpuint(ph[0].p_filesz, ==, 2 * (356 + 460) + 24 + ((descsz + 3) & ~3u));
    g_assert_cmpmem(n + 12, 11, "VMCOREINFO", 11);
    for (unsigned i = descsz % 4; i < 4; i++) {
        uint8_t want = i == descsz % 4 ? 0 : mem[i];

        g_assert_cmpuint(n[24 + (descsz & ~3u) + i], ==, want);
    }
    /* Guest memory keeps its byte. */
    g_assert_cmpuint(qtest_read(s, "readb", note + 24 + descsz), ==, mem[descsz % 4]);
    qtest_quit(s);
}

static void qtest_cmd_ok(QTestState *s, const char *fmt, uint64_t a, uint64_t v)
{
    g_autofree char *line = NULL;

    qtest_sendf(s, fmt, a, v);
    line = qtest_recv_line(s);
    g_assert_cmpstr(line, ==, "OK");
}

#define FMT_AV "0x%" G_GINT64_MODIFIER "x 0x%" G_GINT64_MODIFIER "x\n"

/*
 * What the guest's fw_cfg driver does: find etc/vmcoreinfo in the file
 * directory by port I/O, then DMA-write {host_format, guest_format, size,
 * paddr} (the DMA address register is big-endian).
 */
static void program_vmcoreinfo(QTestState *s, uint16_t format, uint32_t size,
                               uint64_t paddr)
{
    const uint64_t data = 0x7000, desc = 0x7040;
    uint32_t count = 0;
    uint16_t key = 0;

    qtest_cmd_ok(s, "outw " FMT_AV, 0x510, 0x19);
    for (int i = 0; i < 4; i++) {
        count = count << 8 | qtest_read(s, "inb", 0x511);
    }
    g_assert_cmpuint(count, <, 64);
    for (uint32_t i = 0; i < count; i++) {
        char ent[64];

        for (int b = 0; b < 64; b++) {
            ent[b] = qtest_read(s, "inb", 0x511);
        }
        ent[63] = 0;
        if (!strcmp(ent + 8, "etc/vmcoreinfo")) {
            key = (uint8_t)ent[4] << 8 | (uint8_t)ent[5];
        }
    }
    g_assert_cmpuint(key, !=, 0);
    qtest_cmd_ok(s, "writeq " FMT_AV, data, (uint64_t)format << 16 |
                 (uint64_t)size << 32);
    qtest_cmd_ok(s, "writeq " FMT_AV, data + 8, paddr);
    /* FWCfgDmaAccess: control, length, address, all big-endian. */
    qtest_cmd_ok(s, "writel " FMT_AV, desc,
                 GUINT32_TO_BE((uint32_t)key << 16 | 0x08 | 0x10));
    qtest_cmd_ok(s, "writel " FMT_AV, desc + 4, GUINT32_TO_BE(16));
    qtest_cmd_ok(s, "writeq " FMT_AV, desc + 8, GUINT64_TO_BE(data));
    qtest_cmd_ok(s, "outl " FMT_AV, 0x514, 0);
    qtest_cmd_ok(s, "outl " FMT_AV, 0x518, GUINT32_SWAP_LE_BE((uint32_t)desc));
    g_assert_cmpuint(qtest_read(s, "readl", desc), ==, 0);
}

/* Writes a note {namesz, descsz, type 0, name, desc} at gpa. */
static void put_note(QTestState *s, uint64_t gpa, uint32_t namesz, uint32_t descsz,
                     const char *name, const char *desc)
{
    size_t nlen = strlen(name) + 1, dlen = strlen(desc);
    size_t doff = 12 + ((nlen + 3) & ~(size_t)3);

    qtest_cmd_ok(s, "writel " FMT_AV, gpa, namesz);
    qtest_cmd_ok(s, "writel " FMT_AV, gpa + 4, descsz);
    qtest_cmd_ok(s, "writel " FMT_AV, gpa + 8, 0);
    for (size_t i = 0; i < nlen; i++) {
        qtest_cmd_ok(s, "writeb " FMT_AV, gpa + 12 + i, (uint8_t)name[i]);
    }
    for (size_t i = 0; i < dlen; i++) {
        qtest_cmd_ok(s, "writeb " FMT_AV, gpa + doff + i, (uint8_t)desc[i]);
    }
}

/* PT_NOTE size of an ELF file. */
static uint64_t note_size_of_file(const char *f)
{
    g_autofree gchar *data = NULL;
    gsize len;
    const Elf64_Ehdr *e;

    g_assert_true(g_file_get_contents(f, &data, &len, NULL));
    e = (const Elf64_Ehdr *)data;
    return ((const Elf64_Phdr *)(data + e->e_phoff))[0].p_filesz;
}

/* Reference 3.10: each way a guest note can be wrong is a warning, not an error. */
static void test_guest_note_warnings(void)
{
    QTestState *s = qtest_init_with_qtest("-M pc -m 16 -S -device vmcoreinfo");
    g_autofree char *f = tmp_file(s, "warn.elf");
    static const struct {
        uint16_t format;
        uint32_t size;
        uint64_t paddr;
        uint32_t namesz, descsz;
        const char *desc;
        const char *warning;
        uint64_t guest_note;
    } cases[] = {
        { 1, 8, 0x8000, 11, 4, "ab", "warning: guest note size is invalid: 8\r\n", 0 },
        { 1, 2u << 20, 0x8000, 11, 4, "ab",
          "warning: guest note size is invalid: 2097152\r\n", 0 },
        { 2, 64, 0x8000, 11, 4, "ab",
          "warning: guest note format is unsupported: 2\r\n", 0 },
        { 1, 64, 0x8000, 11, 2u << 20, "ab",
          "warning: Invalid guest note header\r\n", 0 },
        { 1, 64, 0x8000, 11, 60, "ab", "warning: Invalid guest note header\r\n", 0 },
        { 1, 64, 0x8000, 11, 27, "NUMBER(phys_base)=zz\nX=1\n",
          "warning: Failed to read NUMBER(phys_base)=\r\n", 52 },
        { 1, 64, 0x8000, 11, 24, "NUMBER(phys_base)=4096\n", "", 48 },
        /* Outside RAM reads as zeros, as QEMU's unchecked read: a 12-byte note. */
        { 1, 64, 0xf0000000ull, 0, 0, "", "", 12 },
    };

    /* phys_base is only looked for in EM_X86_64 dumps: vCPU 0 in long mode. */
    qtest_qmp_assert_success(s, "{\"execute\": \"x-guestdump-set-registers\", "
                             "\"arguments\": {\"cpu-index\": 0, \"registers\": "
                             "[{\"name\": \"efer\", \"value\": 1280}]}}");
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *out;

        g_unlink(f);
        if (cases[i].paddr < 0x100000) {
            for (uint64_t a = 0; a < 128; a += 8) {
                qtest_cmd_ok(s, "writeq " FMT_AV, cases[i].paddr + a, 0);
            }
            put_note(s, cases[i].paddr, cases[i].namesz, cases[i].descsz,
                     "VMCOREINFO", cases[i].desc);
        }
        program_vmcoreinfo(s, cases[i].format, cases[i].size, cases[i].paddr);
        out = qtest_hmp(s, "dump-guest-memory %s", f);
        g_test_message("case %zu: %s", i, out);
        g_assert_cmpstr(out, ==, cases[i].warning);
        g_free(out);
        g_free(wait_completed(s, "completed"));
        g_assert_cmpuint(note_size_of_file(f), ==, 356 + 460 + cases[i].guest_note);
    }
    qtest_quit(s);
}

/* A vmcoreinfo device the guest never wrote: a warning per dump, no guest note. */
static void test_guest_note_absent(void)
{
    QTestState *s = qtest_init("-M pc -m 16 -S -device vmcoreinfo");
    g_autofree char *f = tmp_file(s, "nonote.elf");
    g_autofree gchar *data = NULL;
    gsize len;
    const Elf64_Ehdr *e;
    const Elf64_Phdr *ph;
    char *out;

    out = qtest_hmp(s, "dump-guest-memory %s", f);
    g_assert_cmpstr(out, ==, "warning: guest note is not present\r\n");
    g_free(out);
    g_free(wait_completed(s, "completed"));
    g_assert_true(g_file_get_contents(f, &data, &len, NULL));
    e = (const Elf64_Ehdr *)data;
    ph = (const Elf64_Phdr *)(data + e->e_phoff);
    /* One vCPU in real mode: EM_386 notes, CORE 164 + QEMU 460, nothing else. */
    g_assert_cmpuint(e->e_machine, ==, EM_386);
    g_assert_cmpuint(ph[0].p_filesz, ==, 164 + 460);
    qtest_quit(s);
}

/* Argument combinations that must work, and the raw-kdump seekability rule. */
static void test_combinations(void)
{
    QTestState *s = qtest_init(DEMO_ARGS);
    g_autofree char *a = tmp_file(s, "paging-filter.elf");
    g_autofree char *b = tmp_file(s, "detach.kdump");
    g_autofree char *c = tmp_file(s, "raw.kdump");
    g_autofree gchar *data = NULL;
    gsize len;
    const Elf64_Ehdr *e;
    const Elf64_Phdr *ph;
    int fds[2];
    int before;

    /* paging + filter: only mappings inside [16 MiB, 18 MiB), clipped. */
    qtest_assert_ok(dump_to(s, a, "\"begin\": 16777216, \"length\": 2097152"));
    g_free(wait_completed(s, "completed"));
    g_assert_true(g_file_get_contents(a, &data, &len, NULL));
    e = (const Elf64_Ehdr *)data;
    ph = (const Elf64_Phdr *)(data + e->e_phoff);
    g_assert_cmpuint(e->e_phnum, >=, 2);
    for (int i = 1; i < e->e_phnum; i++) {
        g_assert_cmpuint(ph[i].p_paddr, >=, 16777216);
        g_assert_cmpuint(ph[i].p_paddr + ph[i].p_memsz, <=, 16777216 + 2097152);
    }
    g_assert_cmpint(query_dump(s).total, ==, 2097152);
    check_elf_file(a, 2097152);

    /* A detached kdump to a file, explicit format and detach=false spelled out. */
    qtest_assert_ok(dump_to(s, b, "\"format\": \"kdump-zlib\", \"detach\": true"));
    g_free(wait_completed(s, "completed"));
    g_free(data);
    data = NULL;
    g_assert_true(g_file_get_contents(b, &data, &len, NULL));
    g_assert_cmpmem(data, 12, "makedumpfile", 12);
    qtest_assert_ok(dump_to(s, c, "\"format\": \"kdump-raw-zlib\", \"detach\": false"));
    g_free(wait_completed(s, "completed"));
    g_free(data);
    data = NULL;
    g_assert_true(g_file_get_contents(c, &data, &len, NULL));
    g_assert_cmpmem(data, 8, "KDUMP   ", 8);

    /* kdump-raw needs a seekable fd (8.2's rule); the pipe is consumed and closed. */
    before = qtest_count_fds(s);
    g_assert_cmpint(pipe(fds), ==, 0);
    pass_fd(s, fds[1], "rawpipe");
    close(fds[1]);
    assert_error(dump(s, "\"paging\": false, \"protocol\": \"fd:rawpipe\", "
                         "\"format\": \"kdump-raw-zlib\""),
                 "kdump-raw formats require a seekable file");
    g_assert_cmpint(qtest_count_fds(s), ==, before);
    close(fds[0]);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dump/capability", test_capability);
    g_test_add_func("/dump/errors", test_errors);
    g_test_add_func("/dump/dump-level", test_dump_level);
    g_test_add_func("/dump/sync-elf", test_sync_elf);
    g_test_add_func("/dump/paused-stays-paused", test_paused_stays_paused);
    g_test_add_func("/dump/detach-no-tear", test_detach_no_tear);
    g_test_add_func("/dump/libvirt-sequence", test_libvirt_sequence);
    g_test_add_func("/dump/fd-file-and-fdset", test_fd_file_and_fdset);
    g_test_add_func("/dump/pipe-reader-exits", test_pipe_reader_exits);
    g_test_add_func("/dump/full-tmpfs", test_full_tmpfs);
    g_test_add_func("/dump/busy", test_busy);
    g_test_add_func("/dump/fifo", test_fifo);
    g_test_add_func("/dump/first-write-fails", test_first_write_fails);
    g_test_add_func("/dump/quit-during-dump", test_quit_during_dump);
    g_test_add_func("/dump/quit-cancel-text", test_quit_cancel_text);
    g_test_add_func("/dump/filter", test_filter);
    g_test_add_func("/dump/combinations", test_combinations);
    g_test_add_func("/dump/hmp", test_hmp);
    g_test_add_func("/dump/vmcoreinfo/phys-base", test_phys_base);
    g_test_add_func("/dump/vmcoreinfo/absent", test_guest_note_absent);
    g_test_add_func("/dump/vmcoreinfo/warnings", test_guest_note_warnings);
    g_test_add_func("/dump/vmcoreinfo/nul-after-descriptor", test_note_nul);
    return g_test_run();
}
