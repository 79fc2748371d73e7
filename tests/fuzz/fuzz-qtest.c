/* Fuzz target: qtest protocol lines against a small pc with fw_cfg DMA and vmcoreinfo. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz.h"
#include "sysemu/machine.h"
#include "sysemu/physmem.h"

/* The harness's own stdin/stdout, put back after each input. */
static int saved_in = -1, saved_out = -1, devnull = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    saved_in = dup(STDIN_FILENO);
    saved_out = dup(STDOUT_FILENO);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    g_assert(saved_in >= 0 && saved_out >= 0 && devnull >= 0);
    return 0;
}

/*
 * Input: the bytes a qtest client sends. The server reads "stdio", so the
 * input becomes stdin (an in-memory file) and replies go to /dev/null; a
 * fresh machine per input keeps every input reproducible on its own.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MachineOptions opts = { .machine_type = (char *)"pc", .ram_size = 16u << 20,
                            .qtest = (char *)"stdio", .start_paused = true };
    g_autoptr(GPtrArray) devices = g_ptr_array_new();
    int fd = memfd_create("fuzz-qtest", MFD_CLOEXEC);

    if (saved_in < 0) {
        LLVMFuzzerInitialize(NULL, NULL);
    }
    g_assert(fd >= 0);
    g_assert(write(fd, data, size) == (ssize_t)size);
    g_assert(lseek(fd, 0, SEEK_SET) == 0);
    g_assert(dup2(fd, STDIN_FILENO) == STDIN_FILENO);
    g_assert(dup2(devnull, STDOUT_FILENO) == STDOUT_FILENO);
    close(fd);

    g_ptr_array_add(devices, (char *)"vmcoreinfo");
    opts.devices = devices;
    g_assert(machine_init(&opts, NULL));
    /* The server reads until end of file, then drops the client: nothing stays ready. */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    machine_cleanup();
    while (g_main_context_iteration(NULL, FALSE)) {
    }

    g_assert(dup2(saved_in, STDIN_FILENO) == STDIN_FILENO);
    g_assert(dup2(saved_out, STDOUT_FILENO) == STDOUT_FILENO);
    return 0;
}
