/* qtests of win-dmp via the host: QMP, HMP, detached progress, events, RAM untouched. */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "libqtest.h"
#include "win-guest.h"

#define FW_CFG_CTL 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_DMA 0x514
#define MEM_MIB 40

static void load_range(uint64_t pa, const uint8_t *data, size_t len, void *opaque)
{
    qtest_bufwrite(opaque, pa, data, len);
}

static uint16_t vmcoreinfo_key(QTestState *s)
{
    uint32_t count = 0;

    qtest_outw(s, FW_CFG_CTL, 0x19);
    for (int i = 0; i < 4; i++) {
        count = count << 8 | qtest_inb(s, FW_CFG_DATA);
    }
    g_assert_cmpuint(count, <, 256);
    for (uint32_t f = 0; f < count; f++) {
        uint8_t ent[64];

        for (int i = 0; i < 64; i++) {
            ent[i] = qtest_inb(s, FW_CFG_DATA);
        }
        if (!strcmp((char *)ent + 8, "etc/vmcoreinfo")) {
            return ent[4] << 8 | ent[5];
        }
    }
    g_assert_not_reached();
}

/* What the virtio-win fwcfg driver does: hand the note's address over by DMA. */
static void program_note(QTestState *s, const WinGuest *g)
{
    uint8_t info[16], desc[16], saved[32];
    uint64_t at = 0x2000;
    uint32_t v32;
    uint64_t v64;

    qtest_bufread(s, at, saved, sizeof(saved));
    v32 = GUINT32_TO_LE(1 | 1 << 16);                 /* host_format, guest_format ELF */
    memcpy(info, &v32, 4);
    v32 = GUINT32_TO_LE(g->note_size);
    memcpy(info + 4, &v32, 4);
    v64 = GUINT64_TO_LE(g->note_pa);
    memcpy(info + 8, &v64, 8);
    v32 = GUINT32_TO_BE((uint32_t)vmcoreinfo_key(s) << 16 | 0x08 | 0x10);
    memcpy(desc, &v32, 4);
    v32 = GUINT32_TO_BE(16);
    memcpy(desc + 4, &v32, 4);
    v64 = GUINT64_TO_BE(at + 16);
    memcpy(desc + 8, &v64, 8);
    qtest_bufwrite(s, at, desc, 16);
    qtest_bufwrite(s, at + 16, info, 16);
    qtest_outl(s, FW_CFG_DMA, 0);
    qtest_outl(s, FW_CFG_DMA + 4, GUINT32_SWAP_LE_BE((uint32_t)at));
    g_assert_cmphex(qtest_readl(s, at), ==, 0);
    qtest_bufwrite(s, at, saved, sizeof(saved));
}

static QTestState *start_guest(const WinGuest *g, bool with_note)
{
    g_autofree char *args = g_strdup_printf("-S -m %d -smp %d -device vmcoreinfo",
                                            MEM_MIB, g->opt.smp);
    QTestState *s = qtest_init_with_qtest(args);

    win_guest_foreach_range(g, load_range, s);
    if (with_note) {
        program_note(s, g);
    }
    for (int i = 0; i < g->opt.smp; i++) {
        for (size_t k = 0; k < g->nregs; k++) {
            qtest_set_reg(s, i, g->regs[i][k].name, g->regs[i][k].value);
        }
    }
    return s;
}

static WinGuest *make_guest(WinGuestMode mode, int smp)
{
    WinGuestOptions opt;

    win_guest_default_options(&opt);
    opt.mode = mode;
    opt.smp = smp;
    opt.ram_size = (uint64_t)MEM_MIB << 20;
    return win_guest_new(&opt);
}

static char *ram_digest(QTestState *s)
{
    g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree uint8_t *buf = g_malloc(1 << 20);
    static const uint64_t ranges[2][2] = {
        { 0, 0xa0000 }, { 0x100000, (uint64_t)MEM_MIB << 20 },
    };

    for (int r = 0; r < 2; r++) {
        for (uint64_t a = ranges[r][0]; a < ranges[r][1]; a += 1 << 20) {
            size_t n = MIN(1u << 20, ranges[r][1] - a);

            qtest_bufread(s, a, buf, n);
            g_checksum_update(c, buf, n);
        }
    }
    return g_strdup(g_checksum_get_string(c));
}

static uint64_t expected_size(const WinGuest *g)
{
    uint64_t size = g->x64 ? 8192 : 4096;

    for (size_t i = 0; i < g->nruns; i++) {
        size += g->runs[i].page_count * 4096;
    }
    return size;
}

static JsonObject *dump(QTestState *s, const char *path, bool detach)
{
    g_autofree char *proto = g_strdup_printf("file:%s", path);
    g_autofree char *qp = qtest_json_str(proto);

    return qtest_qmp(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                     "{\"paging\": false, \"format\": \"win-dmp\", \"protocol\": %s%s}}",
                     qp, detach ? ", \"detach\": true" : "");
}

/* vCPU i's rax where its PRCB's CONTEXT lands in the file. */
static void assert_context_rax(const WinGuest *g, const char *data, int cpu)
{
    uint64_t va = win_guest_va(g, WIN_GUEST_CTX_OFF(cpu)) + (g->x64 ? 0x78 : 0xb0);
    uint64_t pa = win_guest_kva_to_pa(g, va), off = g->x64 ? 8192 : 4096;
    uint64_t want = g->x64 ? 0x0101010101010101ull + cpu : 0x01010101u + cpu;
    uint64_t got = 0;

    for (size_t i = 0; i < g->nruns; i++) {
        uint64_t base = g->runs[i].base_page * 4096, size = g->runs[i].page_count * 4096;

        if (pa >= base && pa < base + size) {
            memcpy(&got, data + off + (pa - base), g->x64 ? 8 : 4);
            g_assert_cmphex(GUINT64_FROM_LE(got), ==, want);
            return;
        }
        off += size;
    }
    g_assert_not_reached();
}

/* Is guest-physical pa inside one of the first ncpu CONTEXTs the dump lays over RAM? */
static bool in_context(const WinGuest *g, int ncpu, uint64_t pa)
{
    size_t size = g->x64 ? 1232 : 720;

    for (int i = 0; i < ncpu; i++) {
        uint64_t va = win_guest_va(g, WIN_GUEST_CTX_OFF(i));

        for (size_t k = 0; k < size; k += 4096 - ((va + k) & 4095)) {
            uint64_t lo = win_guest_kva_to_pa(g, va + k);
            size_t n = MIN(size - k, 4096 - ((va + k) & 4095));

            if (pa >= lo && pa < lo + n) {
                return true;
            }
        }
    }
    return false;
}

/*
 * Our own reader of the layout: the header's own fields say where each run
 * is; every byte must be guest RAM as the host holds it, except the CONTEXTs.
 */
static void check_layout(QTestState *s, const WinGuest *g, const uint8_t *d, size_t len)
{
    g_autofree uint8_t *ram = g_malloc(1 << 20);
    size_t off = g->x64 ? 8192 : 4096;
    uint32_t nruns;
    uint64_t space;

    memcpy(&nruns, d + (g->x64 ? 0x88 : 0x64), 4);
    nruns = GUINT32_FROM_LE(nruns);
    memcpy(&space, d + 0xfa0, 8);
    space = g->x64 ? GUINT64_FROM_LE(space) : GUINT32_FROM_LE((uint32_t)space);
    g_assert_cmpuint(space, ==, len);
    g_assert_cmpuint(nruns, ==, g->nruns);
    for (uint32_t i = 0; i < nruns; i++) {
        uint64_t base, count;

        if (g->x64) {
            memcpy(&base, d + 0x98 + 16 * i, 8);
            memcpy(&count, d + 0xa0 + 16 * i, 8);
            base = GUINT64_FROM_LE(base);
            count = GUINT64_FROM_LE(count);
        } else {
            uint32_t b32, c32;

            memcpy(&b32, d + 0x6c + 8 * i, 4);
            memcpy(&c32, d + 0x70 + 8 * i, 4);
            base = GUINT32_FROM_LE(b32);
            count = GUINT32_FROM_LE(c32);
        }
        for (uint64_t a = base * 4096; a < (base + count) * 4096; a += 1 << 20) {
            size_t n = MIN(1u << 20, (base + count) * 4096 - a);

            g_assert_cmpuint(off + n, <=, len);
            qtest_bufread(s, a, ram, n);
            if (memcmp(ram, d + off, n)) {
                for (size_t k = 0; k < n; k++) {
                    if (ram[k] != d[off + k] && !in_context(g, g->opt.smp, a + k)) {
                        g_error("guest-physical 0x%" G_GINT64_MODIFIER "x differs at "
                                "file offset 0x%zx", a + k, off + k);
                    }
                }
            }
            off += n;
        }
    }
    g_assert_cmpuint(off, ==, len);
}

/*
 * live: true: guest RAM written while a pipe holds the dump back (header,
 * KDBG and CONTEXT reads included, which happen after the command returned)
 * leaves the dump equal to the paused dump taken before the writes.
 */
static void test_live(void)
{
    g_autoptr(WinGuest) g = make_guest(WIN_GUEST_LONG4, 2);
    QTestState *s = start_guest(g, true);
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "ref.dmp", NULL);
    g_autofree char *want = NULL;
    g_autoptr(GByteArray) got = g_byte_array_new();
    uint8_t buf[65536], page[4096];
    JsonObject *rsp, *ev, *res;
    gsize want_len;
    ssize_t n;
    int fds[2];

    rsp = dump(s, path, false);
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    json_object_unref(qtest_qmp_event_wait(s, "DUMP_COMPLETED"));
    g_assert_true(g_file_get_contents(path, &want, &want_len, NULL));

    g_assert_cmpint(pipe(fds), ==, 0);
    rsp = qtest_qmp_fds(s, &fds[1], 1, "{\"execute\": \"getfd\", "
                        "\"arguments\": {\"fdname\": \"live\"}}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    close(fds[1]);
    rsp = qtest_qmp(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                    "{\"paging\": false, \"format\": \"win-dmp\", \"protocol\": "
                    "\"fd:live\", \"detach\": true, \"live\": true}}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    memset(page, 0xa5, sizeof(page));
    for (uint64_t a = 0; a < ((uint64_t)MEM_MIB << 20); a += 0x40000) {
        qtest_bufwrite(s, a, page, sizeof(page));
    }
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
        g_byte_array_append(got, buf, n);
    }
    close(fds[0]);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    res = json_object_get_object_member(json_object_get_object_member(ev, "data"),
                                        "result");
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "completed");
    json_object_unref(ev);
    g_assert_cmpuint(got->len, ==, want_len);
    g_assert_true(memcmp(got->data, want, want_len) == 0);
    qtest_bufread(s, 0x40000, buf, sizeof(page));
    g_assert_cmpmem(buf, sizeof(page), page, sizeof(page));
    qtest_quit(s);
}

static void test_capability(void)
{
    QTestState *s = qtest_init("-S -m 32");
    g_autoptr(JsonNode) r = qtest_qmp_assert_success_ref(
        s, "{\"execute\": \"query-dump-guest-memory-capability\"}");
    JsonArray *fmts = json_object_get_array_member(json_node_get_object(r), "formats");
    bool found = false;

    for (guint i = 0; i < json_array_get_length(fmts); i++) {
        found |= !strcmp(json_array_get_string_element(fmts, i), "win-dmp");
    }
    g_assert_true(found);
    qtest_quit(s);
}

static void test_sync(void)
{
    g_autoptr(WinGuest) g = make_guest(WIN_GUEST_LONG4, 2);
    QTestState *s = start_guest(g, true);
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "w.dmp", NULL);
    g_autofree char *before = ram_digest(s), *after = NULL, *data = NULL;
    JsonObject *rsp = dump(s, path, false), *ev, *res;
    gsize len;

    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    res = json_object_get_object_member(json_object_get_object_member(ev, "data"),
                                        "result");
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "completed");
    g_assert_cmpint(json_object_get_int_member(res, "total"), ==, expected_size(g));
    g_assert_cmpint(json_object_get_int_member(res, "completed"), ==, expected_size(g));
    json_object_unref(ev);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==, expected_size(g));
    g_assert_cmpmem(data, 8, "PAGEDU64", 8);
    assert_context_rax(g, data, 0);
    assert_context_rax(g, data, 1);
    check_layout(s, g, (const uint8_t *)data, len);
    after = ram_digest(s);
    g_assert_cmpstr(before, ==, after);
    qtest_quit(s);
}

/* query-dump's total becomes RequiredDumpSpace; completed reaches it. */
static void test_detached(void)
{
    g_autoptr(WinGuest) g = make_guest(WIN_GUEST_PAE, 2);
    QTestState *s = start_guest(g, true);
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "w.dmp", NULL);
    JsonObject *rsp = dump(s, path, true), *ev, *res;
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    res = json_object_get_object_member(json_object_get_object_member(ev, "data"),
                                        "result");
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "completed");
    g_assert_cmpint(json_object_get_int_member(res, "total"), ==, expected_size(g));
    json_object_unref(ev);
    {
        g_autoptr(JsonNode) q = qtest_qmp_assert_success_ref(
            s, "{\"execute\": \"query-dump\"}");
        JsonObject *o = json_node_get_object(q);

        g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "completed");
        g_assert_cmpint(json_object_get_int_member(o, "total"), ==, expected_size(g));
        g_assert_cmpint(json_object_get_int_member(o, "completed"), ==,
                        expected_size(g));
    }
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==, expected_size(g));
    g_assert_cmpmem(data, 8, "PAGEDUMP", 8);
    assert_context_rax(g, data, 1);
    check_layout(s, g, (const uint8_t *)data, len);
    qtest_quit(s);
}

static void test_hmp(void)
{
    g_autoptr(WinGuest) g = make_guest(WIN_GUEST_X86, 1);
    QTestState *s = start_guest(g, true);
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "h.dmp", NULL);
    g_autofree char *out = qtest_hmp(s, "dump-guest-memory -w %s", path);
    g_autofree char *both = qtest_hmp(s, "dump-guest-memory -w -z %s.2", path);
    g_autofree char *data = NULL;
    gsize len;
    JsonObject *ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");

    g_assert_cmpstr(out, ==, "");
    json_object_unref(ev);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==, expected_size(g));
    g_assert_cmpmem(data, 8, "PAGEDUMP", 8);
    g_assert_nonnull(strstr(both, "Error: only one of '-z|-l|-s|-w' can be set"));
    qtest_quit(s);
}

/* A sync HMP dump prints 7.2's warnings on that monitor, as QEMU does. */
static void test_hmp_warning(void)
{
    WinGuestOptions opt;
    g_autoptr(WinGuest) g = NULL;
    QTestState *s;
    g_autofree char *path = NULL, *out = NULL;

    win_guest_default_options(&opt);
    opt.smp = 2;
    opt.number_processors = 1;
    opt.ram_size = (uint64_t)MEM_MIB << 20;
    g = win_guest_new(&opt);
    s = start_guest(g, true);
    path = g_build_filename(qtest_tmpdir(s), "w.dmp", NULL);
    out = qtest_hmp(s, "dump-guest-memory -w %s", path);
    g_assert_nonnull(strstr(out, "warning: win-dump: number of QEMU CPUs is bigger than "
                                 "NumberProcessors (1) in guest Windows"));
    json_object_unref(qtest_qmp_event_wait(s, "DUMP_COMPLETED"));
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    qtest_quit(s);
}

/* No guest note: QEMU's error, in the reply and the event; no file left behind. */
static void test_no_note(void)
{
    g_autoptr(WinGuest) g = make_guest(WIN_GUEST_LONG4, 1);
    QTestState *s = start_guest(g, false);
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "n.dmp", NULL);
    JsonObject *rsp = dump(s, path, false), *ev;

    g_assert_cmpstr(qtest_error_desc(rsp), ==, "win-dump: invalid vmcoreinfo note size");
    json_object_unref(rsp);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    g_assert_cmpstr(json_object_get_string_member(
                        json_object_get_object_member(ev, "data"), "error"), ==,
                    "win-dump: invalid vmcoreinfo note size");
    json_object_unref(ev);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    qtest_quit(s);
}

/*
 * CPU 1's CONTEXT pointer leads nowhere: QEMU 7.2 fails and leaves CPU 0's
 * CONTEXT written into guest RAM; we fail the same way and RAM is as it was.
 */
static void test_failure_keeps_ram(void)
{
    g_autoptr(WinGuest) g = make_guest(WIN_GUEST_LONG4, 2);
    uint64_t bad = GUINT64_TO_LE(WIN_GUEST_KVA64 + WIN_GUEST_KPAGES * 4096 - 0x100);
    QTestState *s;
    g_autofree char *path = NULL, *before = NULL, *after = NULL;
    JsonObject *rsp;

    win_guest_write(g, win_guest_kva_to_pa(g, win_guest_va(g, WIN_GUEST_PRCB_OFF(1))) +
                    WIN_GUEST_PRCB_CONTEXT, &bad, 8);
    s = start_guest(g, true);
    path = g_build_filename(qtest_tmpdir(s), "f.dmp", NULL);
    before = ram_digest(s);
    rsp = dump(s, path, false);
    g_assert_cmpstr(qtest_error_desc(rsp), ==,
                    "win-dump: failed to save CPU #1 context");
    json_object_unref(rsp);
    json_object_unref(qtest_qmp_event_wait(s, "DUMP_COMPLETED"));
    after = ram_digest(s);
    g_assert_cmpstr(before, ==, after);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    qtest_quit(s);
}

/*
 * dump-cancel while the writer waits on a pipe nobody reads: "dump: cancelled",
 * the CONTEXTs laid over guest RAM are taken back, the next dump is whole.
 */
static void test_cancel(void)
{
    g_autoptr(WinGuest) g = make_guest(WIN_GUEST_LONG4, 2);
    QTestState *s = start_guest(g, true);
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "c.dmp", NULL);
    g_autofree char *before = ram_digest(s), *after = NULL, *data = NULL;
    int fds[2], queued = 0, still = 0;
    int64_t last = -1;
    JsonObject *rsp, *ev, *res;
    gsize len;

    g_assert_cmpint(pipe(fds), ==, 0);
    rsp = qtest_qmp_fds(s, &fds[1], 1,
        "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"w\"}}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    close(fds[1]);
    qtest_qmp_assert_success(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                             "{\"paging\": false, \"format\": \"win-dmp\", "
                             "\"protocol\": \"fd:w\", \"detach\": true}}");
    /* Until the pipe is full and the progress stands still. */
    for (int i = 0; still < 3; i++) {
        g_autoptr(JsonNode) q = qtest_qmp_assert_success_ref(
            s, "{\"execute\": \"query-dump\"}");
        JsonObject *o = json_node_get_object(q);
        int64_t now = json_object_get_int_member(o, "completed");

        g_assert_cmpint(i, <, 600);
        g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "active");
        g_assert_cmpint(ioctl(fds[0], FIONREAD, &queued), ==, 0);
        still = (queued >= fcntl(fds[0], F_GETPIPE_SZ) / 2 && now == last) ? still + 1 : 0;
        last = now;
        g_usleep(50 * 1000);
    }
    qtest_qmp_assert_success(s, "{\"execute\": \"dump-cancel\"}");
    ev = qtest_qmp_event_poll(s, "DUMP_COMPLETED", 0);
    g_assert_nonnull(ev);
    g_assert_cmpstr(json_object_get_string_member(
                        json_object_get_object_member(ev, "data"), "error"), ==,
                    "dump: cancelled");
    json_object_unref(ev);
    close(fds[0]);
    after = ram_digest(s);
    g_assert_cmpstr(before, ==, after);

    rsp = dump(s, path, true);
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    ev = qtest_qmp_event_wait(s, "DUMP_COMPLETED");
    res = json_object_get_object_member(json_object_get_object_member(ev, "data"),
                                        "result");
    g_assert_cmpstr(json_object_get_string_member(res, "status"), ==, "completed");
    json_object_unref(ev);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    check_layout(s, g, (const uint8_t *)data, len);
    qtest_quit(s);
}

static void test_paging_rejected(void)
{
    QTestState *s = qtest_init("-S -m 32");
    JsonObject *rsp = qtest_qmp(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                                "{\"paging\": true, \"format\": \"win-dmp\", "
                                "\"protocol\": \"file:/nonexistent/x\"}}");

    g_assert_cmpstr(qtest_error_desc(rsp), ==,
                    "kdump-compressed format doesn't support paging or filter");
    json_object_unref(rsp);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/win-dump/capability", test_capability);
    g_test_add_func("/win-dump/sync", test_sync);
    g_test_add_func("/win-dump/detached", test_detached);
    g_test_add_func("/win-dump/hmp", test_hmp);
    g_test_add_func("/win-dump/hmp-warning", test_hmp_warning);
    g_test_add_func("/win-dump/no-note", test_no_note);
    g_test_add_func("/win-dump/failure-keeps-ram", test_failure_keeps_ram);
    g_test_add_func("/win-dump/paging-rejected", test_paging_rejected);
    g_test_add_func("/win-dump/cancel", test_cancel);
    g_test_add_func("/win-dump/live", test_live);
    return g_test_run();
}
