/* A synthetic Windows-like guest for win-dmp tests: paging, KDBG, PRCBs, CONTEXTs. */
#ifndef TESTS_QTEST_WIN_GUEST_H
#define TESTS_QTEST_WIN_GUEST_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Everything QEMU 7.2's win-dmp looks at, built in a sparse RAM image that
 * a test loads into guestdump (physmem writes, qtest, -device loader) or
 * into real QEMU (-device loader + gdbstub), so both dump the same state.
 *
 * Physical layout (all below 16 MiB, none in the 0xa0000-0xfffff ROM window):
 *   0x100000  page tables (system CR3 = DirectoryTableBase)
 *   0x300000  16 pages of kernel structures, mapped at WIN_GUEST_KVA64 or
 *             WIN_GUEST_KVA32 in reverse page order, so a CONTEXT that crosses
 *             a virtual page boundary lands in two separate physical pages
 *   0x310000  the vmcoreinfo ELF note "VMCOREINFO" holding the DUMP_HEADER
 *   0x400000  4 MiB of deterministic data
 * The header's runs cover RAM except page 0, 0xa0000-0xfffff and
 * 0x800000-0x8fffff.
 */

#define WIN_GUEST_KVA64 0xfffff80000000000ull
#define WIN_GUEST_KVA32 0x82000000ull
#define WIN_GUEST_KPA 0x300000ull
#define WIN_GUEST_KPAGES 16
#define WIN_GUEST_NOTE_PA 0x310000ull
#define WIN_GUEST_PT_PA 0x100000ull
#define WIN_GUEST_DATA_PA 0x400000ull
#define WIN_GUEST_DATA_SIZE (4ull << 20)
#define WIN_GUEST_MAX_CPUS 8

/* Offsets inside the kernel structure area (virtual = KVA + offset). */
#define WIN_GUEST_KDBG_OFF 0x0000
#define WIN_GUEST_BUGCHECK_OFF 0x1000
#define WIN_GUEST_KPB_OFF 0x2000
#define WIN_GUEST_PRCB_OFF(i) (0x3000 + (i) * 0x400)
#define WIN_GUEST_CTX_OFF(i) (0x8c00 + (i) * 0x800)
#define WIN_GUEST_KDBG_COPY_OFF 0xe000
#define WIN_GUEST_PRCB_CONTEXT 0x100      /* OffsetPrcbContext */

typedef enum WinGuestMode {
    WIN_GUEST_LONG4,      /* DU64, 4-level paging */
    WIN_GUEST_PAE,        /* DUMP, PAE paging */
    WIN_GUEST_X86,        /* DUMP, 2-level 32-bit paging */
} WinGuestMode;

typedef struct WinGuestOptions {
    WinGuestMode mode;
    int smp;                      /* 1 .. WIN_GUEST_MAX_CPUS */
    uint64_t ram_size;            /* 32 MiB .. 3 GiB: one pc.ram block below 4 GiB */
    bool kdbg_encrypted;          /* KDBG's OwnerTag is not "KDBG": the fallback path */
    uint32_t bugcheck_code;       /* 0: no crash recorded (LIVE_SYSTEM_DUMP) */
    int64_t number_processors;    /* <0: smp */
    uint32_t seed;
} WinGuestOptions;

typedef struct WinGuestReg {
    const char *name;             /* x-guestdump-set-registers spelling */
    uint64_t value;
} WinGuestReg;

typedef struct WinGuestRun {
    uint64_t base_page;
    uint64_t page_count;
} WinGuestRun;

typedef struct WinGuest {
    WinGuestOptions opt;
    bool x64;
    GHashTable *pages;            /* pfn -> 4 KiB page, owned */
    uint64_t note_pa;
    uint32_t note_size;           /* 8216 or 4120 */
    uint64_t kva;                 /* where the kernel structures are mapped */
    uint64_t cr3;
    size_t nregs;
    WinGuestReg regs[WIN_GUEST_MAX_CPUS][40];
    size_t nruns;
    WinGuestRun runs[8];
} WinGuest;

WinGuest *win_guest_new(const WinGuestOptions *opt);
void win_guest_free(WinGuest *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WinGuest, win_guest_free)

/* Default options: long4, 1 vCPU, 64 MiB, no bugcheck. */
void win_guest_default_options(WinGuestOptions *opt);

/* Virtual addresses of the structures. */
uint64_t win_guest_va(const WinGuest *g, uint64_t off);
/* The guest-physical address of a kernel-area virtual address. */
uint64_t win_guest_kva_to_pa(const WinGuest *g, uint64_t va);

/* Header bytes (after the 24-byte note header) and their guest-physical address. */
uint8_t *win_guest_header(WinGuest *g);
uint64_t win_guest_header_pa(const WinGuest *g);

/* Reading and writing the image (a test may make it hostile before loading). */
void win_guest_write(WinGuest *g, uint64_t pa, const void *buf, size_t len);
void win_guest_read(const WinGuest *g, uint64_t pa, void *buf, size_t len);

/*
 * Contiguous non-zero page ranges, ascending: calls fn for each with the
 * guest-physical start and the bytes (valid during the call).
 */
void win_guest_foreach_range(const WinGuest *g,
                             void (*fn)(uint64_t pa, const uint8_t *data, size_t len,
                                        void *opaque),
                             void *opaque);

#endif
