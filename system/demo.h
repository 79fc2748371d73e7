/* The demo guest's fixed layout (docs/demo-guest.md), asserted by tests. */
#ifndef SYSTEM_DEMO_H
#define SYSTEM_DEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"

#define DEMO_MIN_RAM        (64ULL << 20)
#define DEMO_OSRELEASE      "6.1.0-guestdump-demo"

/* Kernel image: 16 MiB at phys 16 MiB, mapped with 2 MiB pages at the usual base. */
#define DEMO_KERNEL_PHYS    0x1000000ULL
#define DEMO_KERNEL_VIRT    0xffffffff81000000ULL
#define DEMO_KERNEL_SIZE    0x1000000ULL
#define DEMO_PHYS_BASE      0       /* __START_KERNEL_map maps phys 0: no relocation */
#define DEMO_KERNEL_OFFSET  0       /* no KASLR */
/* Offsets inside the kernel image. */
#define DEMO_IDLE_OFF       0x1000ULL     /* vCPU i's rip: +0x1000 + i * 0x40 */
#define DEMO_PT_OFF         0xa00000ULL   /* page tables; swapper_pg_dir first */
#define DEMO_PT_SIZE        0x200000ULL
#define DEMO_IDT_OFF        0xc01000ULL
#define DEMO_UTS_OFF        0xc02000ULL   /* init_uts_ns */
#define DEMO_NOTE_OFF       0xc03000ULL   /* vmcoreinfo_note */
#define DEMO_NOTE_SIZE      4132          /* Linux's VMCOREINFO_NOTE_SIZE */
#define DEMO_FWCFG_OFF      0xc05000ULL   /* the driver's DMA buffers */
#define DEMO_GDT_OFF        0xc10000ULL   /* one GDT per vCPU */
#define DEMO_GDT_SIZE       0x80ULL
#define DEMO_CR3            (DEMO_KERNEL_PHYS + DEMO_PT_OFF)

/* Direct map of all RAM (Linux's page_offset_base without KASLR). */
#define DEMO_DIRECT_MAP     0xffff888000000000ULL

/* Activity while running: a tick counter page and a log ring. */
#define DEMO_TICK_PHYS      0x2000000ULL
#define DEMO_LOG_PHYS       0x2001000ULL
#define DEMO_LOG_SIZE       0x10000ULL
#define DEMO_LOG_HDR        64ULL
#define DEMO_LOG_SLOT       64ULL
#define DEMO_LOG_SLOTS      ((DEMO_LOG_SIZE - DEMO_LOG_HDR) / DEMO_LOG_SLOT)

/* Per-vCPU area (gs base, stack, TSS), reached through the direct map. */
#define DEMO_PERCPU_PHYS    0x2200000ULL
#define DEMO_PERCPU_SIZE    0x4000ULL
#define DEMO_TSS_OFF        0x1000ULL
#define DEMO_TSS_LIMIT      0x67u
#define DEMO_STACK_TOP      0x3f00ULL

/* User pages: 4 KiB mappings, the text pages in reverse physical order. */
#define DEMO_USER_PHYS      0x3000000ULL

typedef struct DemoUserPage {
    uint64_t va;
    uint64_t pa;
    bool writable;
} DemoUserPage;

static const DemoUserPage demo_user_pages[] = {
    { 0x400000, DEMO_USER_PHYS + 0x3000, false },
    { 0x401000, DEMO_USER_PHYS + 0x2000, false },
    { 0x402000, DEMO_USER_PHYS + 0x1000, false },
    { 0x403000, DEMO_USER_PHYS + 0x0000, false },
    { 0x600000, DEMO_USER_PHYS + 0x10000, true },
    { 0x601000, DEMO_USER_PHYS + 0x11000, true },
    { 0x7ffffffde000ULL, DEMO_USER_PHYS + 0x20000, true },
    { 0x7ffffffdf000ULL, DEMO_USER_PHYS + 0x21000, true },
    { 0, 0, false },
};

/*
 * -demo-write-load: a thread rewrites every page of writable RAM from
 * DEMO_LOAD_START up while the VM runs; DEMO_LOAD_STATUS holds "GDLOAD01",
 * the pass (u64 LE at +8), the pages written in it (+16) and the pages per
 * pass (+24). docs/demo-guest.md.
 */
#define DEMO_LOAD_START     0x4000000ULL
#define DEMO_LOAD_STATUS    0x3fff000ULL
bool demo_write_load_start(Error **errp);
void demo_write_load_stop(void);

/* Builds the guest in the machine's RAM and vCPUs (after memory, vCPUs and fw_cfg). */
bool demo_guest_init(uint64_t seed, Error **errp);
void demo_guest_cleanup(void);
/* Ticks since start: how often the guest changed its memory. */
uint64_t demo_guest_ticks(void);
/* The VMCOREINFO text the demo guest publishes (g_free it). */
char *demo_vmcoreinfo_text(void);

#endif
