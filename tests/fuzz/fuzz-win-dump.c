/* Fuzz target: win-dmp's checks of the guest's DUMP_HEADER and the kernel structures it names. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz.h"
#include "sysemu/dump-core.h"
#include "sysemu/physmem.h"
#include "system/machine-internal.h"
#include "tests/qtest/win-guest.h"

#define NMODES 3
#define WIN_SMP 2

/* A valid guest per paging mode, so fuzzed headers start from something win-dmp takes. */
static WinGuest *guests[NMODES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (int m = 0; m < NMODES; m++) {
        WinGuestOptions opt;

        win_guest_default_options(&opt);
        opt.mode = m;
        opt.smp = WIN_SMP;
        opt.ram_size = 32ull << 20;    /* the generator's smallest */
        guests[m] = win_guest_new(&opt);
    }
    return 0;
}

static void load_range(uint64_t pa, const uint8_t *data, size_t len, void *opaque)
{
    g_assert(physmem_write(pa, data, len, NULL));
}

/* The unit test's pc-like map: RAM below 640 KiB, a ROM hole, RAM from 1 MiB on. */
static void load_guest(const WinGuest *g)
{
    physmem_reset();
    g_assert(physmem_add_block("pc.ram", 0, 0xa0000, NULL, false, 0, NULL));
    g_assert(physmem_add_block("pc.rom", 0xc0000, 0x20000, NULL, true, 1, NULL));
    g_assert(physmem_add_block("pc.ram", 0x100000, g->opt.ram_size - 0x100000, NULL,
                               false, 0, NULL));
    win_guest_foreach_range(g, load_range, NULL);
}

/*
 * Input: flags (1): mode = flags % 3, bit 2 a fuzzed note size (2 bytes
 * follow), bit 3 a fuzzed cr3 (8 bytes follow); then header length (2)
 * and that many bytes laid over the DUMP_HEADER; then patches of guest
 * RAM, each pa (4, modulo RAM size), length (1) and bytes.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t flags = fuzz_take(&data, &size, 1);
    const WinGuest *g = guests[(flags & 3) % NMODES];
    X86CPU cpus[WIN_SMP];
    DumpX86CPUState states[WIN_SMP];
    DumpPlan s = { 0 };
    DumpJob job = { .plan = &s };
    g_autofree uint8_t *note = NULL;
    uint32_t note_size = g->note_size;
    uint64_t cr3 = 0;
    size_t hdr_len;
    Error *err = NULL;
    bool ok;
    int fd;

    if (flags & 4) {
        note_size = fuzz_take(&data, &size, 2);
    }
    if (flags & 8) {
        cr3 = fuzz_take(&data, &size, 8);
    }
    load_guest(g);
    /* fuzz_take first: MIN would evaluate it twice. */
    hdr_len = fuzz_take(&data, &size, 2);
    hdr_len = MIN(MIN(hdr_len, size), g->note_size - 24);
    g_assert(physmem_write(win_guest_header_pa(g), data, hdr_len, NULL));
    data += hdr_len;
    size -= hdr_len;
    while (size >= 5) {
        uint64_t pa = fuzz_take(&data, &size, 4) % g->opt.ram_size;
        size_t n = fuzz_take(&data, &size, 1);

        n = MIN(n, size);

        /* Holes and ROM take nothing, as for a guest write. */
        guest_bus_write(pa, data, n);
        data += n;
        size -= n;
    }

    for (int i = 0; i < WIN_SMP; i++) {
        x86_cpu_reset(&cpus[i]);
        cpus[i].cpu_index = i;
        for (size_t k = 0; k < g->nregs; k++) {
            g_assert(x86_cpu_set_reg(&cpus[i], g->regs[i][k].name, g->regs[i][k].value,
                                     NULL));
        }
        if (flags & 8) {
            cpus[i].env.cr[3] = cr3;
        }
        states[i] = cpus[i].env;
        states[i].cpu_index = i;
    }
    /* As the dump core hands it over: read from RAM at dump time, one spare byte. */
    note = g_malloc0(note_size + 1);
    if (!physmem_read(g->note_pa, note, note_size, NULL)) {
        note_size = 0;
    }
    s.fmt = dump_format_info(DUMP_GUEST_MEMORY_FORMAT_WIN_DMP);
    s.nr_cpus = WIN_SMP;
    s.cpus = states;
    dump_guest_blocks_collect(&s.guest_phys_blocks);
    s.guest_note = note_size ? note : NULL;
    s.guest_note_size = note_size;
    atomic_store(&job.total_size, (int64_t)g->opt.ram_size);
    fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    g_assert(fd >= 0);
    job.out = dump_output_new_fd(fd, false);

    ok = dump_win_dmp_writer.prepare(&job, &err) &&
         dump_win_dmp_writer.write(&job, &err);
    dump_win_dmp_writer.cleanup(&job);
    dump_guest_blocks_free(&s.guest_phys_blocks);
    g_assert(ok == !err);
    fuzz_verbose("win-dmp: %s\n", ok ? "ok" : error_get_pretty(err));
    if (ok) {
        g_assert(dump_output_finish(job.out));
    } else {
        dump_output_free(job.out);
    }
    error_free(err);
    physmem_reset();
    return 0;
}
