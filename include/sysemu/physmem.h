/* The machine's guest-physical memory map: RAM/ROM blocks and checked accessors. */
#ifndef SYSEMU_PHYSMEM_H
#define SYSEMU_PHYSMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

/*
 * One RAM-backed region of the guest-physical address space, as QEMU's
 * dump sees it (RAM, and ROM backed by RAM such as pc.bios). Blocks are
 * kept sorted by gpa and never overlap. The host memory is anonymous mmap
 * memory owned by the machine; it stays valid until the machine is torn
 * down at exit.
 */
typedef struct RAMBlock {
    char *name;          /* QEMU's memory-region name: "pc.ram", "pc.bios" ... */
    uint64_t gpa;        /* guest-physical start */
    uint64_t size;       /* bytes */
    uint8_t *host;       /* host address of gpa */
    bool readonly;       /* ROM: the guest cannot write it; loaders can */
    /*
     * Blocks that QEMU would dump as one merged block (same memory region,
     * contiguous in guest-physical and host address) share a region id.
     */
    unsigned region;
} RAMBlock;

/* The blocks in ascending gpa order. */
size_t physmem_block_count(void);
const RAMBlock *physmem_block(size_t index);

/* The block holding gpa, or NULL (a hole, MMIO). */
const RAMBlock *physmem_find(uint64_t gpa);
/* True when [gpa, gpa+len) is entirely RAM/ROM (it may span blocks). */
bool physmem_is_ram(uint64_t gpa, uint64_t len);

/*
 * Read or write guest-physical memory. A range that is not entirely inside
 * RAM is refused ("guest-physical range 0x%llx+0x%llx is outside RAM") and
 * nothing is transferred. Writes to read-only blocks are refused unless
 * physmem_write_rom() is used (loaders, firmware).
 */
bool physmem_read(uint64_t gpa, void *buf, uint64_t len, Error **errp);
bool physmem_write(uint64_t gpa, const void *buf, uint64_t len, Error **errp);
bool physmem_write_rom(uint64_t gpa, const void *buf, uint64_t len, Error **errp);

/* Host pointer for [gpa, gpa+len) when it lies inside one block, else NULL. */
uint8_t *physmem_host_ptr(uint64_t gpa, uint64_t len);

/*
 * Building the map (the machine, loaders, and unit tests). The new block
 * must not overlap an existing one. host == NULL: anonymous zeroed mmap
 * memory owned by physmem. region: see RAMBlock.region.
 */
const RAMBlock *physmem_add_block(const char *name, uint64_t gpa, uint64_t size,
                                  uint8_t *host, bool readonly, unsigned region,
                                  Error **errp);
/*
 * Anonymous zeroed memory (MAP_NORESERVE, 2 MiB aligned) for several blocks
 * to share: one host mapping instead of one per block, since the kernel
 * allows a process about 65530 mappings. Unmapped by physmem_reset().
 */
uint8_t *physmem_alloc_ram(uint64_t size, Error **errp);
/*
 * A private, copy-on-write mapping of size bytes of the file fd (from
 * offset 0) for blocks to point into: guest RAM that is a file (a vmcore
 * guestdump-convert reads). Unmapped by physmem_reset().
 */
uint8_t *physmem_map_file(int fd, uint64_t size, Error **errp);
/*
 * Takes the pages of file-mapped RAM out of this process's page tables, so
 * they stop counting in its RSS; they read back from the file when touched,
 * even by a thread reading them at that moment. Does nothing and returns
 * false once guest RAM was written through physmem (a copy-on-write page
 * would revert to the file's bytes). The caller guarantees that nobody
 * writes through host pointers meanwhile (a win-dmp dump does: it patches
 * the guest's context in RAM for the time of the dump). Any thread.
 */
bool physmem_trim_file_ram(void);
/* Drops every block (and unmaps the memory physmem owns). */
void physmem_reset(void);

#endif
