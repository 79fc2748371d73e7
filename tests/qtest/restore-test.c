/* qtest of -restore with a vmcore written by real QEMU 7.2 (skipped without QEMU). */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "libqtest.h"

#define BLOB_ADDR  0x200000
#define NOTE_ADDR  0x300000
#define BLOB_SIZE  (256 * 1024)

static const char *source_root(void)
{
    const char *r = g_getenv("GUESTDUMP_SOURCE_ROOT");
    return r ? r : ".";
}

static bool have_qemu(void)
{
    g_autofree char *q = g_find_program_in_path("qemu-system-x86_64");
    g_autofree char *py = g_find_program_in_path("python3");

    return q && py;
}

/* Runs a Python script of the tree; its exit status. */
static int run_py(const char *const *args, char **out)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) gerr = NULL;
    int status = -1;

    g_ptr_array_add(argv, (char *)"python3");
    for (int i = 0; args[i]; i++) {
        g_ptr_array_add(argv, (char *)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL,
                      NULL, out, NULL, &status, &gerr)) {
        g_error("cannot run python3: %s", gerr->message);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

typedef struct RegSet {
    int cpu;
    const char *qemu_name;      /* gdbstub name */
    const char *our_name;       /* x-get-reg name */
    uint64_t value;
} RegSet;

/* A long-mode vCPU 0 and a real-mode vCPU 1 with a few registers changed. */
static const RegSet regs[] = {
    { 0, "efer", NULL, 0x500 },
    { 0, "cs", "cs", 0x10 },
    { 0, "ss", "ss", 0x18 },
    { 0, "ds", "ds", 0x18 },
    { 0, "rax", "rax", 0x1122334455667788ULL },
    { 0, "rbx", "rbx", 0x0123456789abcdefULL },
    { 0, "r15", "r15", 0xfedcba9876543210ULL },
    { 0, "rsp", "rsp", 0xffff888000123ff0ULL },
    { 0, "rip", "rip", 0xffffffff81000040ULL },
    { 0, "eflags", "rflags", 0x246 },
    { 0, "fs_base", "fs_base", 0x7f0000001000ULL },
    { 0, "gs_base", "gs_base", 0xffff88807fc00000ULL },
    { 0, "k_gs_base", "kernel_gs_base", 0x7f0000002000ULL },
    { 0, "cr4", "cr4", 0x6a0 },
    { 0, "cr3", "cr3", 0x1000 },
    { 0, "cr2", "cr2", 0xdead000 },
    { 0, "cr0", "cr0", 0x80050033 },
    { 1, "rcx", "rcx", 0x4242 },
    { 1, "rip", "rip", 0x7c00 },
};

static void test_restore_real_qemu(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *blob_path = NULL, *note_path = NULL, *load1 = NULL, *load2 = NULL;
    g_autofree char *vmci = NULL, *out_dir = NULL, *qemu_elf = NULL, *our_elf = NULL;
    g_autofree char *driver = NULL, *compare = NULL, *args = NULL, *proto = NULL;
    g_autofree char *qproto = NULL, *cmp_out = NULL;
    g_autofree uint8_t *blob = g_malloc(BLOB_SIZE);
    g_autofree uint8_t *back = g_malloc(BLOB_SIZE);
    g_autoptr(GPtrArray) dargs = g_ptr_array_new_with_free_func(g_free);
    const char *text = "OSRELEASE=6.1.0-restore-test\nPAGESIZE=4096\n"
                       "NUMBER(phys_base)=0\n";
    uint8_t note[128] = { 0 };
    uint32_t hdr[3] = { GUINT32_TO_LE(11), GUINT32_TO_LE(strlen(text)), 0 };
    QTestState *s;
    int rc;

    if (!have_qemu()) {
        g_test_skip("qemu-system-x86_64 (and python3) not installed");
        return;
    }
    dir = g_dir_make_tmp("restore-test-XXXXXX", NULL);
    for (int i = 0; i < BLOB_SIZE; i++) {
        blob[i] = (i * 131 + (i >> 12)) & 0xff;
    }
    memcpy(note, hdr, 12);
    memcpy(note + 12, "VMCOREINFO", 11);
    memcpy(note + 24, text, strlen(text));
    blob_path = g_build_filename(dir, "blob.bin", NULL);
    note_path = g_build_filename(dir, "note.bin", NULL);
    g_assert_true(g_file_set_contents(blob_path, (char *)blob, BLOB_SIZE, NULL));
    g_assert_true(g_file_set_contents(note_path, (char *)note, sizeof(note), NULL));

    driver = g_build_filename(source_root(), "tests/compat/qemu_driver.py", NULL);
    out_dir = g_build_filename(dir, "qemu", NULL);
    load1 = g_strdup_printf("%s@0x%x", blob_path, BLOB_ADDR);
    load2 = g_strdup_printf("%s@0x%x", note_path, NOTE_ADDR);
    vmci = g_strdup_printf("0x%x,%zu", NOTE_ADDR, sizeof(note));
    g_ptr_array_add(dargs, g_strdup(driver));
    g_ptr_array_add(dargs, g_strdup("--out"));
    g_ptr_array_add(dargs, g_strdup(out_dir));
    g_ptr_array_add(dargs, g_strdup("--mem"));
    g_ptr_array_add(dargs, g_strdup("64M"));
    g_ptr_array_add(dargs, g_strdup("--smp"));
    g_ptr_array_add(dargs, g_strdup("2"));
    g_ptr_array_add(dargs, g_strdup("--load"));
    g_ptr_array_add(dargs, g_strdup(load1));
    g_ptr_array_add(dargs, g_strdup("--load"));
    g_ptr_array_add(dargs, g_strdup(load2));
    g_ptr_array_add(dargs, g_strdup("--vmcoreinfo"));
    g_ptr_array_add(dargs, g_strdup(vmci));
    for (size_t i = 0; i < G_N_ELEMENTS(regs); i++) {
        g_ptr_array_add(dargs, g_strdup("--reg"));
        g_ptr_array_add(dargs, g_strdup_printf("%d:%s=0x%" G_GINT64_MODIFIER "x",
                                               regs[i].cpu, regs[i].qemu_name,
                                               regs[i].value));
    }
    g_ptr_array_add(dargs, g_strdup("--dump"));
    g_ptr_array_add(dargs, g_strdup("elf"));
    g_ptr_array_add(dargs, NULL);
    rc = run_py((const char *const *)dargs->pdata, NULL);
    if (rc == 77) {
        g_test_skip("qemu_driver.py: QEMU not usable");
        return;
    }
    g_assert_cmpint(rc, ==, 0);
    qemu_elf = g_build_filename(out_dir, "elf.elf", NULL);
    g_assert_true(g_file_test(qemu_elf, G_FILE_TEST_IS_REGULAR));

    /* The restored guest holds the same bytes and registers. */
    args = g_strdup_printf("-S -restore %s", qemu_elf);
    s = qtest_init_with_qtest(args);
    qtest_bufread(s, BLOB_ADDR, back, BLOB_SIZE);
    g_assert(memcmp(blob, back, BLOB_SIZE) == 0);
    for (size_t i = 0; i < G_N_ELEMENTS(regs); i++) {
        if (regs[i].our_name) {
            uint64_t got = qtest_get_reg(s, regs[i].cpu, regs[i].our_name);
            if (got != regs[i].value) {
                g_error("vCPU %d %s: 0x%" G_GINT64_MODIFIER "x, want 0x%"
                        G_GINT64_MODIFIER "x", regs[i].cpu, regs[i].our_name, got,
                        regs[i].value);
            }
        }
    }
    /* EFER from the documented rule: vCPU 0 long mode, vCPU 1 real mode */
    g_assert_cmphex(qtest_get_reg(s, 0, "efer"), ==, 0x500);
    g_assert_cmphex(qtest_get_reg(s, 1, "efer"), ==, 0);
    g_assert_cmphex(qtest_get_reg(s, 1, "cs_base"), ==, 0xffff0000);
    g_assert_cmphex(qtest_get_reg(s, 0, "cs_flags"), ==, 0xaf9a00);
    /* the BIOS ROM and the untouched RAM came back as QEMU had them */
    g_assert_cmphex(qtest_readq(s, 0x3000000), ==, 0);

    /* Dumping the restored guest gives QEMU's file, up to docs/compat.md. */
    our_elf = g_build_filename(dir, "ours.elf", NULL);
    proto = g_strdup_printf("file:%s", our_elf);
    qproto = qtest_json_str(proto);
    qtest_qmp_assert_success(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                             "{\"paging\": false, \"protocol\": %s}}", qproto);
    qtest_quit(s);
    compare = g_build_filename(source_root(), "tests/compat/elf_compare.py", NULL);
    {
        const char *cargs[] = { compare, qemu_elf, our_elf, NULL };
        rc = run_py(cargs, &cmp_out);
    }
    if (rc != 0) {
        g_error("elf_compare.py: %s", cmp_out ? cmp_out : "?");
    }
    {
        g_autoptr(GDir) d = g_dir_open(out_dir, 0, NULL);
        const char *n;
        while (d && (n = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(out_dir, n, NULL);
            g_chmod(p, 0600);
            unlink(p);
        }
        rmdir(out_dir);
        unlink(blob_path);
        unlink(note_path);
        unlink(our_elf);
        rmdir(dir);
    }
}

static void dump_to(QTestState *s, const char *path)
{
    g_autofree char *proto = g_strdup_printf("file:%s", path);
    g_autofree char *qp = qtest_json_str(proto);

    qtest_qmp_assert_success(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                             "{\"paging\": false, \"protocol\": %s}}", qp);
}

static JsonNode *query_regs(QTestState *s, int cpu)
{
    return qtest_qmp_assert_success_ref(s, "{\"execute\": "
                                        "\"x-guestdump-query-registers\", "
                                        "\"arguments\": {\"cpu-index\": %d}}", cpu);
}

/*
 * guestdump's own dump of the demo guest restores to the same guest: every
 * register the notes carry, and a second dump byte for byte the first.
 */
static void test_restore_own_dump(void)
{
    g_autofree char *dir = g_dir_make_tmp("restore-own-XXXXXX", NULL);
    g_autofree char *a = g_build_filename(dir, "a.elf", NULL);
    g_autofree char *b = g_build_filename(dir, "b.elf", NULL);
    g_autofree char *args = g_strdup_printf("-S -restore %s", a);
    g_autofree char *da = NULL, *db = NULL;
    JsonNode *before[2], *after[2];
    gsize la, lb;
    QTestState *s;

    s = qtest_init("-demo -demo-seed 9 -m 256M -smp 2 -S");
    dump_to(s, a);
    before[0] = query_regs(s, 0);
    before[1] = query_regs(s, 1);
    qtest_quit(s);

    s = qtest_init(args);
    after[0] = query_regs(s, 0);
    after[1] = query_regs(s, 1);
    dump_to(s, b);
    qtest_quit(s);

    for (int c = 0; c < 2; c++) {
        JsonArray *x = json_node_get_array(before[c]);
        JsonArray *y = json_node_get_array(after[c]);
        g_assert_cmpuint(json_array_get_length(x), ==, json_array_get_length(y));
        for (guint i = 0; i < json_array_get_length(x); i++) {
            JsonObject *ox = json_array_get_object_element(x, i);
            JsonObject *oy = json_array_get_object_element(y, i);
            const char *name = json_object_get_string_member(ox, "name");
            gint64 vx = json_object_get_int_member(ox, "value");
            gint64 vy = json_object_get_int_member(oy, "value");

            g_assert_cmpstr(name, ==, json_object_get_string_member(oy, "name"));
            if (!strcmp(name, "efer")) {
                /* the documented rule recovers LME|LMA only */
                g_assert_cmphex(vy, ==, vx & 0x500);
            } else if (vx != vy) {
                g_error("vCPU %d %s: 0x%" G_GINT64_MODIFIER "x after restore, "
                        "0x%" G_GINT64_MODIFIER "x before", c, name, vy, vx);
            }
        }
        json_node_unref(before[c]);
        json_node_unref(after[c]);
    }
    g_assert_true(g_file_get_contents(a, &da, &la, NULL));
    g_assert_true(g_file_get_contents(b, &db, &lb, NULL));
    g_assert_cmpuint(la, ==, lb);
    g_assert_true(memcmp(da, db, la) == 0);
    g_chmod(a, 0600);
    g_chmod(b, 0600);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

/*
 * A fresh -S machine is QEMU's: the same blocks, BIOS bytes and reset
 * registers give a dump equal to real QEMU 7.2's (up to docs/compat.md).
 */
static void compare_fresh(const char *machine)
{
    g_autofree char *dir = g_dir_make_tmp("fresh-XXXXXX", NULL);
    g_autofree char *qdir = g_build_filename(dir, "qemu", NULL);
    g_autofree char *qemu_elf = g_build_filename(qdir, "elf.elf", NULL);
    g_autofree char *ours = g_build_filename(dir, "ours.elf", NULL);
    g_autofree char *driver = g_build_filename(source_root(),
                                               "tests/compat/qemu_driver.py", NULL);
    g_autofree char *compare = g_build_filename(source_root(),
                                                "tests/compat/elf_compare.py", NULL);
    g_autofree char *args = g_strdup_printf("-machine %s -m 64M -smp 2 -S "
                                            "-device vmcoreinfo", machine);
    g_autofree char *out = NULL;
    const char *dargs[] = { driver, "--out", qdir, "--machine", machine, "--mem", "64M",
                            "--smp", "2", "--dump", "elf", NULL };
    const char *cargs[] = { compare, qemu_elf, ours, NULL };
    QTestState *s;

    if (!have_qemu()) {
        g_test_skip("qemu-system-x86_64 (and python3) not installed");
        return;
    }
    g_assert_cmpint(run_py(dargs, NULL), ==, 0);
    s = qtest_init(args);
    dump_to(s, ours);
    qtest_quit(s);
    if (run_py(cargs, &out) != 0) {
        g_error("%s: elf_compare.py: %s", machine, out ? out : "?");
    }
    g_chmod(qemu_elf, 0600);
    g_chmod(ours, 0600);
    unlink(qemu_elf);
    unlink(ours);
    {
        g_autofree char *rj = g_build_filename(qdir, "result.json", NULL);
        unlink(rj);
    }
    rmdir(qdir);
    rmdir(dir);
}

static void test_fresh_pc(void)
{
    compare_fresh("pc");
}

static void test_fresh_q35(void)
{
    compare_fresh("q35");
}

/* Caps the host's address space: a restore that multiplied memory fails fast. */
static void limit_memory(gpointer data)
{
    struct rlimit rl = { 1ULL << 30, 1ULL << 30 };

    setrlimit(RLIMIT_AS, &rl);
}

/*
 * Runs the host on path with a 1 GiB address-space limit; it must exit
 * non-zero within 30 s with fragment in its stderr. A host that hangs (a
 * FIFO opened for reading) is killed and fails the test.
 */
static void expect_host_refuses(const char *path, const char *fragment)
{
    const char *argv[] = { GUESTDUMP_BINARY, "-restore", path, "-S", NULL };
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GString) err = g_string_new("");
    GPid pid;
    int errfd, status = 0;
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    pid_t done = 0;
    char buf[4096];
    ssize_t n;

    g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                           G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_STDOUT_TO_DEV_NULL |
                                           G_SPAWN_STDIN_FROM_DEV_NULL,
                                           limit_memory, NULL, &pid, NULL, NULL,
                                           &errfd, &gerr));
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
           g_get_monotonic_time() < deadline) {
        g_usleep(20 * 1000);
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(errfd);
        g_error("-restore %s: the host did not exit within 30 s", path);
    }
    while ((n = read(errfd, buf, sizeof(buf))) > 0) {
        g_string_append_len(err, buf, n);
    }
    close(errfd);
    g_spawn_close_pid(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        g_error("-restore %s: accepted", path);
    }
    if (!strstr(err->str, fragment)) {
        g_error("-restore %s: '%s' does not mention '%s'", path, err->str, fragment);
    }
}

/* An ELF64 x86-64 core: nload PT_LOADs of size bytes, offsets from offset_of. */
static GByteArray *bad_core(uint32_t nload, uint64_t size, bool same_offset,
                            uint64_t extra_offset)
{
    GByteArray *f = g_byte_array_new();
    uint64_t phoff = 64, data = phoff + nload * 56ULL;
    uint8_t eh[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };

    *(uint16_t *)(eh + 16) = 4;
    *(uint16_t *)(eh + 18) = 62;
    *(uint32_t *)(eh + 20) = 1;
    *(uint64_t *)(eh + 32) = phoff;
    *(uint16_t *)(eh + 52) = 64;
    *(uint16_t *)(eh + 54) = 56;
    *(uint16_t *)(eh + 56) = nload;
    g_byte_array_append(f, eh, 64);
    for (uint32_t i = 0; i < nload; i++) {
        uint8_t ph[56] = { 0 };
        uint64_t paddr = (4ULL << 30) + i * size;

        *(uint32_t *)ph = 1;
        *(uint64_t *)(ph + 8) = data + extra_offset + (same_offset ? 0 : i * size);
        *(uint64_t *)(ph + 16) = paddr;
        *(uint64_t *)(ph + 24) = paddr;
        *(uint64_t *)(ph + 32) = size;
        *(uint64_t *)(ph + 40) = size;
        g_byte_array_append(f, ph, 56);
    }
    {
        g_autofree uint8_t *bytes = g_malloc(size * (same_offset ? 1 : nload));
        memset(bytes, 0x5a, size * (same_offset ? 1 : nload));
        g_byte_array_append(f, bytes, size * (same_offset ? 1 : nload));
    }
    return f;
}

static char *put_file(const char *dir, const char *name, const void *data, size_t len)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, data, len, NULL));
    return path;
}

/*
 * Bad -restore input stops the host before it serves anything, with a
 * message and a non-zero exit, in bounded time and memory (issues 10, 15).
 */
static void test_restore_refused(void)
{
    g_autofree char *dir = g_dir_make_tmp("restore-bad-XXXXXX", NULL);
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    g_autofree uint8_t *kdump = g_malloc0(8192);
    char *path;
    GByteArray *b;

    path = put_file(dir, "trunc.core", "\177ELF\002\001\001", 7);
    g_ptr_array_add(files, path);
    expect_host_refuses(path, "truncated");

    b = bad_core(2, 0x1000, false, 0x100000);
    path = put_file(dir, "past-end.core", b->data, b->len);
    g_ptr_array_add(files, path);
    g_byte_array_free(b, TRUE);
    expect_host_refuses(path, "truncated");

    /* 2048 segments of 1 MiB on the same 1 MiB of file: 2 GiB of RSS once */
    b = bad_core(2048, 1 << 20, true, 0);
    path = put_file(dir, "shared.core", b->data, b->len);
    g_ptr_array_add(files, path);
    g_byte_array_free(b, TRUE);
    expect_host_refuses(path, "share file bytes");

    /* kdump files are read (kdump_restore_test.py); these headers are empty */
    memcpy(kdump, "KDUMP   ", 8);
    path = put_file(dir, "raw.kdump", kdump, 8192);
    g_ptr_array_add(files, path);
    expect_host_refuses(path, "kdump file has header version 0");
    memcpy(kdump, "makedumpfile", 12);
    path = put_file(dir, "flat.kdump", kdump, 8192);
    g_ptr_array_add(files, path);
    expect_host_refuses(path, "flattened kdump file has an unknown header");

    path = put_file(dir, "empty.core", "", 0);
    g_ptr_array_add(files, path);
    expect_host_refuses(path, "is empty");

    expect_host_refuses("/dev/zero", "not a regular file");
    expect_host_refuses(dir, "not a regular file");

    /* nobody ever writes into this FIFO: open() must not wait for a writer */
    path = g_build_filename(dir, "fifo.core", NULL);
    g_ptr_array_add(files, path);
    g_assert_cmpint(mkfifo(path, 0600), ==, 0);
    expect_host_refuses(path, "not a regular file");

    for (guint i = 0; i < files->len; i++) {
        unlink(g_ptr_array_index(files, i));
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/restore/real-qemu", test_restore_real_qemu);
    g_test_add_func("/restore/refused", test_restore_refused);
    g_test_add_func("/restore/own-dump", test_restore_own_dump);
    g_test_add_func("/compat/fresh/pc", test_fresh_pc);
    g_test_add_func("/compat/fresh/q35", test_fresh_q35);
    return g_test_run();
}
