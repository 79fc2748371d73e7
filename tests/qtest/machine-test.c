/* qtests of the machine: qtest protocol, fw_cfg and vmcoreinfo, registers, demo. */
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "libqtest.h"

#define FW_CFG_CTL 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_DMA 0x514

static void assert_reply(QTestState *s, const char *cmd, const char *want)
{
    g_autofree char *r = qtest_command(s, "%s", cmd);

    g_assert_cmpstr(r, ==, want);
}

static void test_qtest_memory(void)
{
    QTestState *s = qtest_init_with_qtest("-m 64M -S");
    uint8_t buf[300], back[300];
    uint64_t rom;

    qtest_writeq(s, 0x100000, 0x1122334455667788ULL);
    g_assert_cmphex(qtest_readq(s, 0x100000), ==, 0x1122334455667788ULL);
    g_assert_cmphex(qtest_readl(s, 0x100004), ==, 0x11223344);
    g_assert_cmphex(qtest_readw(s, 0x100002), ==, 0x5566);
    g_assert_cmphex(qtest_readb(s, 0x100000), ==, 0x88);
    qtest_writeb(s, 0x100000, 0xaa);
    qtest_writew(s, 0x100002, 0xbbcc);
    qtest_writel(s, 0x100004, 0xddeeff00);
    g_assert_cmphex(qtest_readq(s, 0x100000), ==, 0xddeeff00bbcc77aaULL);
    /* the exact answers QEMU gives */
    assert_reply(s, "readq 0x100000", "OK 0xddeeff00bbcc77aa");
    assert_reply(s, "readb 0x100000", "OK 0x00000000000000aa");
    assert_reply(s, "writeq 0x100008 0x5", "OK");
    assert_reply(s, "read 0x100008 3", "OK 0x050000");
    assert_reply(s, "b64read 0x100008 3", "OK BQAA");
    assert_reply(s, "endianness", "OK little");
    assert_reply(s, "clock_step", "OK 0");
    assert_reply(s, "clock_step 1000", "OK 1000");
    assert_reply(s, "clock_set 500", "OK 1000");
    assert_reply(s, "clock_set 5000", "OK 5000");
    assert_reply(s, "frobnicate 1 2", "FAIL Unknown command 'frobnicate'");
    assert_reply(s, "write 0x100000 4 0x", "ERR invalid argument size");
    /* missing hex digits are zeros */
    assert_reply(s, "write 0x100000 4 0x12", "OK");
    assert_reply(s, "read 0x100000 4", "OK 0x12000000");

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = i * 7 + 3;
    }
    qtest_memwrite(s, 0x3fffff00, buf, 0);   /* zero bytes are fine */
    qtest_memwrite(s, 0x200000 - 100, buf, sizeof(buf));
    qtest_memread(s, 0x200000 - 100, back, sizeof(back));
    g_assert(memcmp(buf, back, sizeof(buf)) == 0);
    qtest_bufwrite(s, 0x300001, buf, sizeof(buf));
    qtest_bufread(s, 0x300001, back, sizeof(back));
    g_assert(memcmp(buf, back, sizeof(buf)) == 0);
    qtest_memset(s, 0x300000, 0x5a, 0x10000);
    g_assert_cmphex(qtest_readq(s, 0x30fff8), ==, 0x5a5a5a5a5a5a5a5aULL);
    g_assert_cmphex(qtest_readq(s, 0x310000), ==, 0);

    /* unassigned memory reads as zeros and drops writes, as in QEMU */
    qtest_writeq(s, 0xa0000000, 0x1234);
    g_assert_cmphex(qtest_readq(s, 0xa0000000), ==, 0);
    g_assert_cmphex(qtest_readq(s, 0x4000000 - 4), ==, 0);   /* half RAM, half hole */
    qtest_writeq(s, 0x4000000 - 4, ~0ULL);
    g_assert_cmphex(qtest_readq(s, 0x4000000 - 4), ==, 0xffffffff);
    /* ROM ignores guest writes */
    rom = qtest_readq(s, 0xfffffff0);
    qtest_writeq(s, 0xfffffff0, ~rom);
    g_assert_cmphex(qtest_readq(s, 0xfffffff0), ==, rom);
    /* the ISA window shows the top of the same ROM */
    g_assert_cmphex(qtest_readq(s, 0xffff0), ==, rom);
    /* a request that would need a giant reply is refused, the session lives on */
    {
        g_autofree char *r = qtest_command(s, "read 0 0x100000000");
        g_assert_true(g_str_has_prefix(r, "FAIL"));
    }
    assert_reply(s, "readb 0x100008", "OK 0x0000000000000005");
    /* a memset over the whole address space stays cheap and spares ROM */
    rom = qtest_readq(s, 0xfffffff0);
    assert_reply(s, "memset 0 0xffffffffffffffff 0x11", "OK");
    g_assert_cmphex(qtest_readq(s, 0x3fffff8), ==, 0x1111111111111111ULL);
    g_assert_cmphex(qtest_readq(s, 0xfffffff0), ==, rom);
    qtest_quit(s);
}

/* fw_cfg through the I/O ports, as firmware and Linux see it. */
static void test_qtest_fw_cfg_ports(void)
{
    QTestState *s = qtest_init_with_qtest("-m 64M -S -device vmcoreinfo");
    char sig[5] = { 0 };
    uint32_t count = 0;
    bool found = false;

    qtest_outw(s, FW_CFG_CTL, 0);
    for (int i = 0; i < 4; i++) {
        sig[i] = qtest_inb(s, FW_CFG_DATA);
    }
    g_assert_cmpstr(sig, ==, "QEMU");
    qtest_outw(s, FW_CFG_CTL, 1);
    g_assert_cmphex(qtest_inb(s, FW_CFG_DATA), ==, 3);
    /* "QEMU CFG" from the big-endian DMA register */
    g_assert_cmphex(qtest_inl(s, FW_CFG_DMA), ==, 0x554d4551);
    assert_reply(s, "inb 0x511", "OK 0x0000");
    qtest_outw(s, FW_CFG_CTL, 0x19);
    for (int i = 0; i < 4; i++) {
        count = count << 8 | qtest_inb(s, FW_CFG_DATA);
    }
    g_assert_cmpuint(count, >=, 1);
    for (uint32_t f = 0; f < count; f++) {
        char ent[64];
        for (int i = 0; i < 64; i++) {
            ent[i] = qtest_inb(s, FW_CFG_DATA);
        }
        found |= !strcmp(ent + 8, "etc/vmcoreinfo");
    }
    g_assert_true(found);
    qtest_quit(s);
}

static uint16_t vmcoreinfo_key(QTestState *s)
{
    uint32_t count = 0;

    qtest_outw(s, FW_CFG_CTL, 0x19);
    for (int i = 0; i < 4; i++) {
        count = count << 8 | qtest_inb(s, FW_CFG_DATA);
    }
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

/* The guest side of QEMU's vmcoreinfo-test: DMA-write FWCfgVMCoreInfo. */
static void program_vmcoreinfo(QTestState *s, uint16_t format, uint32_t size,
                               uint64_t paddr)
{
    uint16_t key = vmcoreinfo_key(s);
    uint8_t info[16], desc[16];
    uint64_t data_at = 0x1000, desc_at = 0x1100;

    memcpy(info, &(uint16_t){ GUINT16_TO_LE(0) }, 2);
    memcpy(info + 2, &(uint16_t){ GUINT16_TO_LE(format) }, 2);
    memcpy(info + 4, &(uint32_t){ GUINT32_TO_LE(size) }, 4);
    memcpy(info + 8, &(uint64_t){ GUINT64_TO_LE(paddr) }, 8);
    qtest_memwrite(s, data_at, info, 16);
    memcpy(desc, &(uint32_t){ GUINT32_TO_BE((uint32_t)key << 16 | 0x08 | 0x10) }, 4);
    memcpy(desc + 4, &(uint32_t){ GUINT32_TO_BE(16) }, 4);
    memcpy(desc + 8, &(uint64_t){ GUINT64_TO_BE(data_at) }, 8);
    qtest_memwrite(s, desc_at, desc, 16);
    qtest_outl(s, FW_CFG_DMA, 0);
    qtest_outl(s, FW_CFG_DMA + 4, GUINT32_SWAP_LE_BE((uint32_t)desc_at));
    g_assert_cmphex(qtest_readl(s, desc_at), ==, 0);     /* control: done, no error */
}

/* The note bytes as they end up in an ELF dump, or NULL when absent. */
static char *dump_guest_note(QTestState *s)
{
    g_autofree char *path = g_build_filename(qtest_tmpdir(s), "vi.elf", NULL);
    g_autofree char *proto = g_strdup_printf("file:%s", path);
    g_autofree char *qp = qtest_json_str(proto);
    g_autofree char *data = NULL;
    gsize len;
    char *hit;

    qtest_qmp_assert_success(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                             "{\"paging\": false, \"protocol\": %s}}", qp);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    unlink(path);
    /* notes come before guest memory, which starts after the first 4 KiB here */
    hit = memmem(data, MIN(len, 4096), "VMCOREINFO", 11);
    return hit ? g_strndup(hit + 12, 40) : NULL;
}

static void test_vmcoreinfo_programming(void)
{
    QTestState *s = qtest_init_with_qtest("-m 64M -S -device vmcoreinfo");
    const char *text = "OSRELEASE=6.6.6-qtest\nPAGESIZE=4096\n";
    uint8_t note[128] = { 0 };
    uint32_t hdr[3] = { GUINT32_TO_LE(11), GUINT32_TO_LE(strlen(text)), 0 };
    g_autofree char *n1 = NULL, *n2 = NULL, *n3 = NULL, *n4 = NULL, *n5 = NULL;

    memcpy(note, hdr, 12);
    memcpy(note + 12, "VMCOREINFO", 11);
    memcpy(note + 24, text, strlen(text));
    qtest_memwrite(s, 0x200000, note, sizeof(note));

    n1 = dump_guest_note(s);
    g_assert_null(n1);                                 /* nothing announced yet */
    program_vmcoreinfo(s, 1, sizeof(note), 0x200000);
    n2 = dump_guest_note(s);
    g_assert_nonnull(n2);
    g_assert_true(g_str_has_prefix(n2, "OSRELEASE=6.6.6-qtest"));
    program_vmcoreinfo(s, 1, 2u << 20, 0x200000);       /* too large */
    n3 = dump_guest_note(s);
    g_assert_null(n3);
    program_vmcoreinfo(s, 2, sizeof(note), 0x200000);   /* unknown format */
    n4 = dump_guest_note(s);
    g_assert_null(n4);
    program_vmcoreinfo(s, 0, sizeof(note), 0x200000);   /* withdrawn */
    n5 = dump_guest_note(s);
    g_assert_null(n5);
    qtest_quit(s);
}

static void test_registers(void)
{
    QTestState *s = qtest_init_with_qtest("-m 64M -S -smp 2");
    JsonNode *ret;
    JsonArray *arr;
    JsonObject *rsp;
    bool seen = false;

    /* reset state, as QEMU's info registers shows it */
    g_assert_cmphex(qtest_get_reg(s, 0, "rip"), ==, 0xfff0);
    g_assert_cmphex(qtest_get_reg(s, 1, "cs_base"), ==, 0xffff0000);
    g_assert_cmphex(qtest_get_reg(s, 0, "cr0"), ==, 0x60000010);
    g_assert_cmphex(qtest_get_reg(s, 0, "rdx"), ==, 0x60fb1);
    assert_reply(s, "x-get-reg 0 a20", "OK 0x0000000000000001");

    qtest_set_reg(s, 1, "cr3", 0x1234000);
    qtest_set_reg(s, 1, "r13", 0xfedcba9876543210ULL);
    g_assert_cmphex(qtest_get_reg(s, 1, "cr3"), ==, 0x1234000);
    g_assert_cmphex(qtest_get_reg(s, 1, "r13"), ==, 0xfedcba9876543210ULL);
    g_assert_cmphex(qtest_get_reg(s, 0, "cr3"), ==, 0);
    assert_reply(s, "x-set-reg 2 rax 1", "FAIL CPU index 2 is out of range");
    assert_reply(s, "x-set-reg 0 xmm0 1", "FAIL unknown x86 register 'xmm0'");
    /* Only the Windows CONTEXT records these, from QEMU's reset values on. */
    g_assert_cmphex(qtest_get_reg(s, 0, "mxcsr"), ==, 0x1f80);
    g_assert_cmphex(qtest_get_reg(s, 0, "dr6"), ==, 0xffff0ff0);
    g_assert_cmphex(qtest_get_reg(s, 0, "dr7"), ==, 0x400);
    qtest_set_reg(s, 1, "dr3", 0xffffffff81234560ULL);
    g_assert_cmphex(qtest_get_reg(s, 1, "dr3"), ==, 0xffffffff81234560ULL);
    assert_reply(s, "x-get-reg 0", "FAIL invalid arguments to 'x-get-reg'");

    /* QMP: set several at once, read them back */
    qtest_qmp_assert_success(s, "{\"execute\": \"x-guestdump-set-registers\", "
        "\"arguments\": {\"cpu-index\": 0, \"registers\": ["
        "{\"name\": \"efer\", \"value\": 3329}, {\"name\": \"cs_flags\", "
        "\"value\": 11508480}, {\"name\": \"rip\", \"value\": 18446744071578845184}, "
        "{\"name\": \"mxcsr\", \"value\": 40896}, "
        "{\"name\": \"dr7\", \"value\": 1025}]}}");
    g_assert_cmphex(qtest_get_reg(s, 0, "efer"), ==, 0xd01);
    g_assert_cmphex(qtest_get_reg(s, 0, "cs_flags"), ==, 0xaf9b00);
    g_assert_cmphex(qtest_get_reg(s, 0, "rip"), ==, 0xffffffff81000000ULL);
    g_assert_cmphex(qtest_get_reg(s, 0, "mxcsr"), ==, 0x9fc0);
    g_assert_cmphex(qtest_get_reg(s, 0, "dr7"), ==, 0x401);
    ret = qtest_qmp_assert_success_ref(s, "{\"execute\": "
                                       "\"x-guestdump-query-registers\", "
                                       "\"arguments\": {\"cpu-index\": 1}}");
    arr = json_node_get_array(ret);
    g_assert_cmpuint(json_array_get_length(arr), >=, 60);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);
        if (!strcmp(json_object_get_string_member(o, "name"), "cr3")) {
            g_assert_cmpint(json_object_get_int_member(o, "value"), ==, 0x1234000);
            seen = true;
        }
    }
    g_assert_true(seen);
    json_node_unref(ret);

    /* all or nothing: a bad entry leaves the earlier ones unapplied */
    rsp = qtest_qmp(s, "{\"execute\": \"x-guestdump-set-registers\", \"arguments\": "
                    "{\"cpu-index\": 0, \"registers\": [{\"name\": \"rax\", "
                    "\"value\": 7}, {\"name\": \"cs\", \"value\": 65536}]}}");
    g_assert_cmpstr(qtest_error_class(rsp), ==, "GenericError");
    g_assert_nonnull(strstr(qtest_error_desc(rsp), "too large"));
    json_object_unref(rsp);
    g_assert_cmphex(qtest_get_reg(s, 0, "rax"), ==, 0);
    rsp = qtest_qmp(s, "{\"execute\": \"x-guestdump-query-registers\", \"arguments\": "
                    "{\"cpu-index\": 5}}");
    g_assert_cmpstr(qtest_error_class(rsp), ==, "GenericError");
    g_assert_nonnull(strstr(qtest_error_desc(rsp), "out of range"));
    json_object_unref(rsp);
    qtest_quit(s);
}

static uint64_t tick_value(QTestState *s)
{
    uint64_t page[512];

    qtest_bufread(s, 0x2000000, page, sizeof(page));
    g_assert(memcmp(page, "GDTICK01", 8) == 0);
    /* every word of the page carries the same count: a torn read would show */
    for (int i = 2; i < 512; i++) {
        g_assert_cmphex(page[i], ==, page[1]);
    }
    return GUINT64_FROM_LE(page[1]);
}

/* The running demo guest changes its memory; a stopped one does not. */
static void test_demo_activity(void)
{
    QTestState *s = qtest_init_with_qtest("-demo -m 128M -smp 2");
    uint64_t a, b, c, log_total;
    char line[64];

    a = tick_value(s);
    g_usleep(200 * 1000);
    b = tick_value(s);
    g_assert_cmpuint(b, >, a);
    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    b = tick_value(s);
    g_usleep(200 * 1000);
    g_assert_cmpuint(tick_value(s), ==, b);
    /* the log ring's last line is the last tick */
    log_total = qtest_readq(s, 0x2001000 + 16);
    g_assert_cmpuint(log_total, ==, b);
    qtest_memread(s, 0x2001000 + 64 + ((b - 1) % 1023) * 64, line, sizeof(line));
    g_assert_true(g_str_has_prefix(line, "tick "));
    g_assert_cmpuint(g_ascii_strtoull(line + 5, NULL, 10), ==, b);
    qtest_qmp_assert_success(s, "{\"execute\": \"cont\"}");
    g_usleep(200 * 1000);
    c = tick_value(s);
    g_assert_cmpuint(c, >, b);
    /* the demo vCPUs are in long mode with the documented page tables */
    g_assert_cmphex(qtest_get_reg(s, 1, "efer"), ==, 0xd01);
    g_assert_cmphex(qtest_get_reg(s, 1, "cr3"), ==, 0x1a00000);
    g_assert_cmphex(qtest_get_reg(s, 1, "cs_flags"), ==, 0xaf9b00);
    qtest_quit(s);
}

static char *demo_digest(const char *args)
{
    QTestState *s = qtest_init_with_qtest(args);
    g_autofree uint8_t *buf = g_malloc(4 << 20);
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
    char *out;

    for (uint64_t at = 0x4000000; at < 0x6000000; at += 4 << 20) {
        qtest_bufread(s, at, buf, 4 << 20);
        g_checksum_update(c, buf, 4 << 20);
    }
    g_checksum_update(c, (uint8_t *)&(uint64_t){ qtest_get_reg(s, 1, "rax") }, 8);
    out = g_strdup(g_checksum_get_string(c));
    g_checksum_free(c);
    qtest_quit(s);
    return out;
}

static void test_demo_seed(void)
{
    g_autofree char *a = demo_digest("-demo -demo-seed 5 -m 128M -smp 2 -S");
    g_autofree char *b = demo_digest("-demo -demo-seed 5 -m 128M -smp 2 -S");
    g_autofree char *c = demo_digest("-demo -demo-seed 6 -m 128M -smp 2 -S");

    g_assert_cmpstr(a, ==, b);
    g_assert_cmpstr(a, !=, c);
}

/*
 * An independent reader finds its way around the demo guest's dump with
 * nothing but VMCOREINFO: libkdumpfile translates kernel virtual addresses
 * through the demo's page tables (init_uts_ns, the direct map).
 */
static void test_demo_libkdumpfile(void)
{
    static const char script[] =
        "import sys, kdumpfile\n"
        "k = kdumpfile.kdumpfile(sys.argv[1])\n"
        "k.attr['addrxlat.ostype'] = 'linux'\n"
        "print(k.attr['linux.uts.release'])\n"
        "r = k.read(kdumpfile.KDUMP_KVADDR, 0xffffffff81c02000 + 130, 20)\n"
        "print(bytes(r).split(b'\\0')[0].decode())\n"
        "print(bytes(k.read(kdumpfile.KDUMP_KVADDR, 0xffff888002000000, 8)).decode())\n";
    const char *py = "/usr/bin/python3";
    g_autofree char *path = NULL, *proto = NULL, *qp = NULL, *out = NULL;
    g_autofree char *err = NULL;
    QTestState *s;
    int status;

    if (!g_file_test(py, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("no /usr/bin/python3 for libkdumpfile");
        return;
    }
    {
        const char *probe[] = { py, "-c", "import kdumpfile", NULL };
        if (!g_spawn_sync(NULL, (char **)probe, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                          NULL, NULL, NULL, NULL, &status, NULL) ||
            !g_spawn_check_wait_status(status, NULL)) {
            g_test_skip("python3-libkdumpfile not installed");
            return;
        }
    }
    s = qtest_init("-demo -m 128M -smp 2 -S");
    path = g_build_filename(qtest_tmpdir(s), "demo.elf", NULL);
    proto = g_strdup_printf("file:%s", path);
    qp = qtest_json_str(proto);
    qtest_qmp_assert_success(s, "{\"execute\": \"dump-guest-memory\", \"arguments\": "
                             "{\"paging\": false, \"protocol\": %s}}", qp);
    {
        const char *argv[] = { py, "-c", script, path, NULL };
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL, &out,
                                   &err, &status, NULL));
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_error("libkdumpfile failed: %s", err);
    }
    g_assert_cmpstr(out, ==, "6.1.0-guestdump-demo\n6.1.0-guestdump-demo\nGDTICK01\n");
    unlink(path);
    qtest_quit(s);
}

/* RAM is reserved, not allocated: a 64 GiB guest starts on a small host. */
static void test_huge_guest(void)
{
    QTestState *s = qtest_init_with_qtest("-m 64G -S");
    g_autofree char *status = NULL;
    g_autofree char *path = g_strdup_printf("/proc/%d/status", qtest_pid(s));
    const char *rss;

    qtest_writeq(s, 0x100000000ULL + (60ULL << 30), 0x77);
    g_assert_cmphex(qtest_readq(s, 0x100000000ULL + (60ULL << 30)), ==, 0x77);
    g_assert_cmphex(qtest_readq(s, 0x100000000ULL + (61ULL << 30)), ==, 0);  /* end */
    g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
    rss = strstr(status, "VmRSS:");
    g_assert_nonnull(rss);
    g_assert_cmpuint(g_ascii_strtoull(rss + 6, NULL, 10), <, 256 * 1024);   /* kB */
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/machine/qtest/memory", test_qtest_memory);
    g_test_add_func("/machine/qtest/fw-cfg-ports", test_qtest_fw_cfg_ports);
    g_test_add_func("/machine/vmcoreinfo/programming", test_vmcoreinfo_programming);
    g_test_add_func("/machine/registers", test_registers);
    g_test_add_func("/machine/demo/activity", test_demo_activity);
    g_test_add_func("/machine/demo/seed", test_demo_seed);
    g_test_add_func("/machine/demo/libkdumpfile", test_demo_libkdumpfile);
    g_test_add_func("/machine/huge-guest", test_huge_guest);
    return g_test_run();
}
