/* win-guest-gen: the synthetic Windows-like guest as RAM blobs plus guest.json. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../qtest/win-guest.h"

/*
 * guest.json: {"mem", "smp", "mode", "loads": [{"file", "addr", "size"}],
 * "vmcoreinfo": {"addr", "size", "format"}, "cpus": [{reg: value}],
 * "windows": {...}}. Register names are x-guestdump-set-registers' names;
 * the comparison script translates them for QEMU's gdbstub.
 */

typedef struct GenCtx {
    const char *dir;
    GString *loads;
    int n;
    bool failed;
} GenCtx;

static void write_range(uint64_t pa, const uint8_t *data, size_t len, void *opaque)
{
    GenCtx *c = opaque;
    g_autofree char *name = g_strdup_printf("ram-%" PRIx64 ".bin", pa);
    g_autofree char *path = g_build_filename(c->dir, name, NULL);
    GError *err = NULL;

    if (!g_file_set_contents(path, (const char *)data, len, &err)) {
        fprintf(stderr, "win-guest-gen: %s\n", err->message);
        g_error_free(err);
        c->failed = true;
        return;
    }
    g_string_append_printf(c->loads, "%s{\"file\": \"%s\", \"addr\": %" PRIu64
                           ", \"size\": %zu}", c->n++ ? ", " : "", name, pa, len);
}

static void put_ptr(WinGuest *g, uint64_t va, uint64_t v)
{
    uint64_t le = GUINT64_TO_LE(v);

    win_guest_write(g, win_guest_kva_to_pa(g, va), &le, g->x64 ? 8 : 4);
}

/* Hostile or unusual variations of the guest, to compare QEMU's handling with ours. */
static bool apply_tweak(WinGuest *g, const char *t)
{
    uint64_t hdr = win_guest_header_pa(g);

    if (!strcmp(t, "bad-bugcheck-ptr")) {
        /* KiBugCheckData points at an unmapped page: a warning, no LIVE_SYSTEM_DUMP. */
        put_ptr(g, win_guest_va(g, WIN_GUEST_KDBG_OFF) + 0x88, g->kva + 0x100000);
        put_ptr(g, win_guest_va(g, WIN_GUEST_KDBG_COPY_OFF) + 0x88, g->kva + 0x100000);
    } else if (!strcmp(t, "bad-context1")) {
        put_ptr(g, win_guest_va(g, WIN_GUEST_PRCB_OFF(1)) + WIN_GUEST_PRCB_CONTEXT,
                g->kva + WIN_GUEST_KPAGES * 4096 - 0x100);
    } else if (!strcmp(t, "share-context")) {
        put_ptr(g, win_guest_va(g, WIN_GUEST_PRCB_OFF(1)) + WIN_GUEST_PRCB_CONTEXT,
                win_guest_va(g, WIN_GUEST_CTX_OFF(0)) + 0x40);
    } else if (!strcmp(t, "dtb-low-bits")) {
        /* Windows with PCIDs keeps flag bits in the low 12 bits of its DTB. */
        uint64_t v = GUINT64_TO_LE(g->cr3 | 0x002);

        win_guest_write(g, hdr + 0x10, &v, g->x64 ? 8 : 4);
    } else if (!strcmp(t, "space-high-garbage") && !g->x64) {
        /* RequiredDumpSpace's high half as a guest may leave it (compat.md W7). */
        uint32_t v = GUINT32_TO_LE(0xdeadbeef);

        win_guest_write(g, hdr + 0xfa4, &v, 4);
    } else if (!strcmp(t, "bad-signature")) {
        win_guest_write(g, hdr, "PAGX", 4);
    } else if (!strcmp(t, "bad-validdump")) {
        win_guest_write(g, hdr + 4, "DU32", 4);
    } else if (!strcmp(t, "kdbg-unmapped")) {
        uint64_t v = GUINT64_TO_LE(g->kva + 0x200000);

        win_guest_write(g, hdr + (g->x64 ? 0x80 : 0x60), &v, g->x64 ? 8 : 4);
    } else if (!strcmp(t, "kdbg-both-bad")) {
        /* KDBG and BugcheckParameter1 both name the bugcheck block. */
        uint64_t v = GUINT64_TO_LE(win_guest_va(g, WIN_GUEST_BUGCHECK_OFF));

        win_guest_write(g, hdr + (g->x64 ? 0x80 : 0x60), &v, g->x64 ? 8 : 4);
        win_guest_write(g, hdr + (g->x64 ? 0x40 : 0x2c), &v, g->x64 ? 8 : 4);
    } else {
        return false;
    }
    return true;
}

static gboolean parse_u64(const char *s, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = g_ascii_strtoull(s, &end, 0);
    return !errno && end != s && !*end;
}

int main(int argc, char **argv)
{
    WinGuestOptions opt;
    g_autoptr(WinGuest) g = NULL;
    g_autoptr(GString) js = g_string_new("{");
    GenCtx c = { .loads = g_string_new("") };
    g_autofree char *json_path = NULL;
    static const char *const modes[] = { "long4", "pae", "x86" };
    g_autoptr(GPtrArray) tweaks = g_ptr_array_new();

    win_guest_default_options(&opt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;

        if (!strcmp(a, "--out") && v) {
            c.dir = v;
        } else if (!strcmp(a, "--mode") && v) {
            opt.mode = !strcmp(v, "pae") ? WIN_GUEST_PAE :
                       !strcmp(v, "x86") ? WIN_GUEST_X86 : WIN_GUEST_LONG4;
        } else if (!strcmp(a, "--smp") && v && parse_u64(v, &n)) {
            opt.smp = n;
        } else if (!strcmp(a, "--mem-mib") && v && parse_u64(v, &n)) {
            opt.ram_size = n << 20;
        } else if (!strcmp(a, "--bugcheck") && v && parse_u64(v, &n)) {
            opt.bugcheck_code = n;
        } else if (!strcmp(a, "--number-processors") && v && parse_u64(v, &n)) {
            opt.number_processors = n;
        } else if (!strcmp(a, "--tweak") && v) {
            g_ptr_array_add(tweaks, (gpointer)v);
        } else if (!strcmp(a, "--kdbg-encrypted")) {
            opt.kdbg_encrypted = true;
            continue;
        } else {
            fprintf(stderr, "usage: win-guest-gen --out DIR [--mode long4|pae|x86] "
                    "[--smp N] [--mem-mib M] [--bugcheck CODE] "
                    "[--number-processors N] [--kdbg-encrypted] [--tweak NAME]...\n");
            return 2;
        }
        i++;
    }
    if (!c.dir || opt.smp < 1 || opt.smp > WIN_GUEST_MAX_CPUS ||
        opt.ram_size < (32ull << 20) || opt.ram_size > (3ull << 30)) {
        fprintf(stderr, "win-guest-gen: need --out, 1..8 vCPUs, 32..3072 MiB\n");
        return 2;
    }
    if (g_mkdir_with_parents(c.dir, 0755) < 0) {
        perror(c.dir);
        return 1;
    }
    g = win_guest_new(&opt);
    for (guint i = 0; i < tweaks->len; i++) {
        if (!apply_tweak(g, g_ptr_array_index(tweaks, i))) {
            fprintf(stderr, "win-guest-gen: unknown tweak %s\n",
                    (const char *)g_ptr_array_index(tweaks, i));
            return 2;
        }
    }
    win_guest_foreach_range(g, write_range, &c);
    if (c.failed) {
        return 1;
    }

    g_string_append_printf(js, "\"mem\": %" PRIu64 ", \"smp\": %d, \"mode\": \"%s\", "
                           "\"machine\": \"pc\", \"loads\": [%s], ", opt.ram_size,
                           opt.smp, modes[opt.mode], c.loads->str);
    g_string_append_printf(js, "\"vmcoreinfo\": {\"addr\": %" PRIu64 ", \"size\": %"
                           PRIu32 ", \"format\": 1}, \"cpus\": [", g->note_pa,
                           g->note_size);
    for (int i = 0; i < opt.smp; i++) {
        g_string_append_printf(js, "%s{", i ? ", " : "");
        for (size_t k = 0; k < g->nregs; k++) {
            g_string_append_printf(js, "%s\"%s\": %" PRIu64, k ? ", " : "",
                                   g->regs[i][k].name, g->regs[i][k].value);
        }
        g_string_append(js, "}");
    }
    g_string_append_printf(js, "], \"windows\": {\"x64\": %s, \"kva\": %" PRIu64
                           ", \"cr3\": %" PRIu64 ", \"runs\": [",
                           g->x64 ? "true" : "false", g->kva, g->cr3);
    for (size_t i = 0; i < g->nruns; i++) {
        g_string_append_printf(js, "%s[%" PRIu64 ", %" PRIu64 "]", i ? ", " : "",
                               g->runs[i].base_page, g->runs[i].page_count);
    }
    g_string_append(js, "], \"context_pa\": [");
    for (int i = 0; i < opt.smp; i++) {
        uint64_t va = win_guest_va(g, WIN_GUEST_CTX_OFF(i));

        g_string_append_printf(js, "%s%" PRIu64, i ? ", " : "",
                               win_guest_kva_to_pa(g, va));
    }
    g_string_append(js, "]}}\n");
    json_path = g_build_filename(c.dir, "guest.json", NULL);
    if (!g_file_set_contents(json_path, js->str, js->len, NULL)) {
        perror(json_path);
        return 1;
    }
    g_string_free(c.loads, TRUE);
    printf("%s\n", json_path);
    return 0;
}
