/* The vmcoreinfo device: where the guest says its crash note lives (etc/vmcoreinfo). */
#ifndef HW_VMCOREINFO_H
#define HW_VMCOREINFO_H

#include <stdbool.h>
#include <stdint.h>

#define FW_CFG_VMCOREINFO_FILENAME "etc/vmcoreinfo"
#define FW_CFG_VMCOREINFO_FORMAT_NONE 0
#define FW_CFG_VMCOREINFO_FORMAT_ELF 1

/* Host order copy of the 16-byte little-endian fw_cfg file. */
typedef struct VMCoreInfoState {
    uint16_t host_format;
    uint16_t guest_format;
    uint32_t size;
    uint64_t paddr;
    bool has_vmcoreinfo;    /* a full 16-byte write at offset 0 with guest_format != 0 */
} VMCoreInfoState;

/* The device if -device vmcoreinfo was given, else NULL. */
const VMCoreInfoState *vmcoreinfo_find(void);

#endif
