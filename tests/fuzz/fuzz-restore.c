/*
 * Fuzz target: -restore's vmcore validation (ELF, and kdump raw or flattened
 * through system/kdump-read.c) and load into a small machine, then a dump of it.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz.h"
#include "qapi-commands.h"
#include "sysemu/dump-core.h"
#include "sysemu/machine.h"
#include "sysemu/physmem.h"

/*
 * Restored guests up to this size, and ending below this address, are dumped
 * too (a kdump's bitmap grows with the highest address); others only loaded.
 */
#define RESTORE_DUMP_MAX (64ull << 20)
#define RESTORE_DUMP_MAX_ADDR (1ull << 36)
/* No x86 guest has RAM above MAXPHYADDR's widest, 52 bits. */
#define RESTORE_MAX_PADDR (1ull << 52)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* One thread: the same input always takes the same path. */
    dump_set_thread_count(1);
    return 0;
}

static uint64_t ram_end(void)
{
    size_t n = physmem_block_count();

    return n ? physmem_block(n - 1)->gpa + physmem_block(n - 1)->size : 0;
}

static uint64_t ram_total(void)
{
    uint64_t total = 0;

    for (size_t i = 0; i < physmem_block_count(); i++) {
        total += physmem_block(i)->size;
    }
    return total;
}

/*
 * Input: the vmcore file itself. Its last byte also picks the dump that
 * follows a successful restore (paging or not, ELF or kdump), so a seed that
 * restores keeps restoring whatever the fuzzer appends.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MachineOptions opts = { .machine_type = (char *)"pc" };
    g_autoptr(GPtrArray) devices = g_ptr_array_new();
    g_autofree char *path = NULL;
    Error *err = NULL;
    uint8_t pick = size ? data[size - 1] : 0;
    int fd;

    /* An in-memory file: -restore wants a path to a regular file. */
    fd = memfd_create("fuzz-restore", MFD_CLOEXEC);
    g_assert(fd >= 0);
    g_assert(write(fd, data, size) == (ssize_t)size);
    path = g_strdup_printf("/proc/self/fd/%d", fd);

    g_ptr_array_add(devices, (char *)"vmcoreinfo");
    opts.devices = devices;
    opts.restore = path;
    if (!machine_init(&opts, &err)) {
        /* Refused: nothing of the machine may be left behind. */
        g_assert(err);
        fuzz_verbose("refused: %s\n", error_get_pretty(err));
        g_assert(physmem_block_count() == 0);
        error_free(err);
        close(fd);
        return 0;
    }
    g_assert(ram_end() <= RESTORE_MAX_PADDR);
    if (ram_total() <= RESTORE_DUMP_MAX && ram_end() <= RESTORE_DUMP_MAX_ADDR) {
        bool kdump = pick & 2;

        qmp_dump_guest_memory(!kdump && (pick & 1), "file:/dev/null", false, false,
                              false, 0, false, 0, kdump,
                              kdump ? DUMP_GUEST_MEMORY_FORMAT_KDUMP_ZLIB
                                    : DUMP_GUEST_MEMORY_FORMAT_ELF,
                              false, 0, false, false, &err);
        /*
         * Paging may hit a walk bound; otherwise whatever a restore accepted
         * must dump (a failure here is a validation the restore missed).
         */
        fuzz_verbose("restored %" G_GUINT64_FORMAT " bytes, dump: %s\n", ram_total(),
                     err ? error_get_pretty(err) : "ok");
        if (err && !strstr(error_get_pretty(err), "use paging=false") &&
            !strstr(error_get_pretty(err), "no guest memory")) {
            g_error("dump of a restored guest failed: %s", error_get_pretty(err));
        }
        error_free(err);
    }
    machine_cleanup();
    close(fd);
    return 0;
}
