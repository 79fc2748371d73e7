/* Interfaces between the machine's own modules (system/, hw/); not for the dump core. */
#ifndef SYSTEM_MACHINE_INTERNAL_H
#define SYSTEM_MACHINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"
#include "sysemu/machine.h"
#include "target/i386/cpu.h"

/* Upper bound for -smp: QEMU's pc/q35 limit. */
#define MACHINE_MAX_CPUS 288

/* vCPUs (system/cpus.c): n fresh vCPUs in reset state. */
void machine_cpus_create(int n);
void machine_cpus_destroy(void);

/*
 * I/O port space (system/ioport.c). Unassigned ports read all-ones, as on
 * PC. An access wider than a device takes (max_size), or running past its
 * end, is split as QEMU splits it: the device gets what fits, the rest
 * goes on to the next port.
 */
typedef uint32_t IOPortReadFunc(void *opaque, uint16_t offset, unsigned size);
typedef void IOPortWriteFunc(void *opaque, uint16_t offset, uint32_t val,
                             unsigned size);
void ioport_register(uint16_t base, uint16_t len, unsigned max_size,
                     IOPortReadFunc *rd, IOPortWriteFunc *wr, void *opaque);
void ioport_reset(void);
/* size is 1, 2 or 4. */
uint32_t ioport_read(uint16_t port, unsigned size);
void ioport_write(uint16_t port, uint32_t val, unsigned size);

/*
 * Register access by name, shared by QMP, qtest and restore. Names: rax..r15,
 * rip, rflags, es..gs (selectors), <seg>_base/_limit/_flags for segments,
 * ldt and tr, gdt_/idt_base/_limit, cr0 cr2 cr3 cr4 cr8, efer,
 * kernel_gs_base, a20.
 */
bool x86_cpu_set_reg(X86CPU *cpu, const char *name, uint64_t value, Error **errp);
bool x86_cpu_get_reg(const X86CPU *cpu, const char *name, uint64_t *value,
                     Error **errp);
/* NULL-terminated list of every register name, in a stable order. */
const char *const *x86_cpu_reg_names(void);

/* -device loader,... (system/loader.c). */
bool loader_device_add(const char *optarg, Error **errp);

/* hw/vmcoreinfo.c: -device vmcoreinfo. */
bool vmcoreinfo_realize(Error **errp);
void vmcoreinfo_cleanup(void);
/* What a guest's complete 16-byte write would set (restore uses it). */
void vmcoreinfo_set(uint16_t guest_format, uint32_t size, uint64_t paddr);

/*
 * Guest-physical accesses as devices and qtest make them (system/qtest.c):
 * holes read as zeros, writes to holes and ROM are dropped.
 */
void guest_bus_read(uint64_t gpa, void *buf, uint64_t len);
void guest_bus_write(uint64_t gpa, const void *buf, uint64_t len);

/* -qtest CHARDEV ("unix:PATH[,server=on]" or "stdio"). */
bool qtest_server_init(const char *chardev, Error **errp);
void qtest_server_cleanup(void);

#endif
