/* Machine options from the command line and machine creation. */
#ifndef SYSEMU_MACHINE_H
#define SYSEMU_MACHINE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"

/*
 * Everything about the guest that system/main.c parses from the command
 * line and hands to machine_init(). Options unknown to main.c are not here.
 */
typedef struct MachineOptions {
    char *machine_type;      /* "pc" (default), "q35", "none" */
    uint64_t ram_size;       /* -m, bytes; 0 = machine default (128 MiB) */
    int smp;                 /* -smp, default 1 */
    char *bios;              /* -bios FILE or NULL */
    bool demo;               /* -demo */
    uint64_t demo_seed;      /* -demo-seed N */
    bool demo_write_load;    /* -demo-write-load */
    char *restore;           /* -restore FILE (ELF vmcore) or NULL */
    uint64_t restore_max_ram; /* -restore-max-ram, bytes; 0 = the default (64 GiB) */
    GPtrArray *devices;      /* -device strings: "loader,file=F,addr=A", "vmcoreinfo" */
    char *qtest;             /* -qtest CHARDEV ("unix:PATH", "stdio") or NULL */
    bool start_paused;       /* -S */
} MachineOptions;

/* Builds memory, vCPUs, devices and the guest; errors before anything runs. */
bool machine_init(const MachineOptions *opts, Error **errp);
void machine_cleanup(void);

#endif
