/* Fuzz target: the guest's vmcoreinfo note (fw_cfg state and note bytes) through whole dumps. */
#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "qapi-commands.h"
#include "sysemu/cpus.h"
#include "sysemu/dump-core.h"
#include "sysemu/machine.h"
#include "sysemu/physmem.h"
#include "system/machine-internal.h"

/* A pc with 2 MiB: every dump of it writes ~2.3 MiB to /dev/null, fast enough. */
#define NOTE_RAM (2u << 20)
/* Where the fuzzed note bytes go; the note may claim to start elsewhere. */
#define NOTE_PA 0x1000u
#define NOTE_MAX (64u << 10)

static const DumpGuestMemoryFormat note_formats[] = {
    DUMP_GUEST_MEMORY_FORMAT_ELF,
    DUMP_GUEST_MEMORY_FORMAT_KDUMP_ZLIB,
    DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_ZLIB,
    DUMP_GUEST_MEMORY_FORMAT_WIN_DMP,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    MachineOptions opts = { .machine_type = (char *)"pc", .ram_size = NOTE_RAM };
    g_autoptr(GPtrArray) devices = g_ptr_array_new();

    g_ptr_array_add(devices, (char *)"vmcoreinfo");
    opts.devices = devices;
    g_assert(machine_init(&opts, NULL));
    dump_set_thread_count(1);
    return 0;
}

/*
 * Input: flags (1), guest_format (2), size (4), paddr offset (4, or 8 with
 * flags bit 7: any address), then the note bytes written at NOTE_PA.
 * flags bits 0-1 pick the format, bit 2 long mode, bit 3 paging, bit 4 a
 * second 16-byte fw_cfg write that clears the note again.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X86CPU *cpu = machine_cpu(0);
    DumpGuestMemoryFormat format;
    uint8_t flags;
    uint16_t guest_format;
    uint32_t note_size;
    uint64_t paddr;
    size_t len;
    Error *err = NULL;

    flags = fuzz_take(&data, &size, 1);
    guest_format = fuzz_take(&data, &size, 2);
    note_size = fuzz_take(&data, &size, 4);
    paddr = flags & 0x80 ? fuzz_take(&data, &size, 8)
                         : NOTE_PA + fuzz_take(&data, &size, 4) % NOTE_MAX;
    len = MIN(size, NOTE_MAX);
    format = note_formats[flags & 3];

    g_assert(physmem_write(NOTE_PA, data, len, NULL));
    vmcoreinfo_set(guest_format, note_size, paddr);
    if (flags & 0x10) {
        vmcoreinfo_set(0, 0, 0);
    }
    x86_cpu_reset(cpu);
    if (flags & 4) {
        /* Long mode, identity-mapped by a 1 GiB page so paging=true has work. */
        uint64_t pml4[1] = { (0x2000 + NOTE_MAX) | 3 }, pdpt[1] = { 0x83 };

        g_assert(physmem_write(NOTE_PA + NOTE_MAX, pml4, 8, NULL));
        g_assert(physmem_write(0x2000 + NOTE_MAX, pdpt, 8, NULL));
        x86_cpu_set_reg(cpu, "cr0", 0x80000011, NULL);
        x86_cpu_set_reg(cpu, "cr3", NOTE_PA + NOTE_MAX, NULL);
        x86_cpu_set_reg(cpu, "cr4", 0x20, NULL);
        x86_cpu_set_reg(cpu, "efer", 0x500, NULL);
    }

    qmp_dump_guest_memory((flags & 8) && format == DUMP_GUEST_MEMORY_FORMAT_ELF,
                          "file:/dev/null", false, false, false, 0, false, 0,
                          true, format, false, 0, &err);
    fuzz_verbose("dump: %s\n", err ? error_get_pretty(err) : "ok");
    /*
     * Every problem with the note is a warning and the note is dropped, so an
     * ELF or kdump dump must succeed; win-dmp refuses what is no header.
     */
    if (err && format != DUMP_GUEST_MEMORY_FORMAT_WIN_DMP) {
        g_error("dump failed: %s", error_get_pretty(err));
    }
    error_free(err);

    /* Back to the same guest for the next input. */
    {
        g_autofree uint8_t *zero = g_malloc0(NOTE_MAX + 0x2000 + 8);

        g_assert(physmem_write(NOTE_PA, zero, NOTE_MAX + 0x2000 + 8, NULL));
    }
    vmcoreinfo_set(0, 0, 0);
    return 0;
}
