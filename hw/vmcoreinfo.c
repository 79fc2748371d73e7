/* The vmcoreinfo device: fw_cfg file etc/vmcoreinfo, where the guest's note is. */
#include <string.h>

#include <glib.h>

#include "hw/fw_cfg.h"
#include "hw/vmcoreinfo.h"
#include "qemu/bswap.h"
#include "system/machine-internal.h"

typedef struct VMCoreInfoDevice {
    VMCoreInfoState state;
    uint8_t file[16];       /* what the guest sees: little-endian FWCfgVMCoreInfo */
} VMCoreInfoDevice;

static VMCoreInfoDevice *vmcoreinfo;

static void vmcoreinfo_file_to_state(VMCoreInfoDevice *d)
{
    d->state.host_format = lduw_le_p(d->file + 0);
    d->state.guest_format = lduw_le_p(d->file + 2);
    d->state.size = ldl_le_p(d->file + 4);
    d->state.paddr = ldq_le_p(d->file + 8);
}

/* Only a complete write of the structure counts: a guest mid-update has no note. */
static void vmcoreinfo_write(void *opaque, uint32_t offset, uint32_t len)
{
    VMCoreInfoDevice *d = opaque;

    vmcoreinfo_file_to_state(d);
    d->state.has_vmcoreinfo = offset == 0 && len == sizeof(d->file) &&
                              d->state.guest_format != FW_CFG_VMCOREINFO_FORMAT_NONE;
}

static void vmcoreinfo_reset(VMCoreInfoDevice *d)
{
    uint16_t host_format = GUINT16_TO_LE(FW_CFG_VMCOREINFO_FORMAT_ELF);

    memset(d->file, 0, sizeof(d->file));
    memcpy(d->file, &host_format, 2);
    vmcoreinfo_file_to_state(d);
    d->state.has_vmcoreinfo = false;
}

bool vmcoreinfo_realize(Error **errp)
{
    if (vmcoreinfo) {
        error_setg(errp, "at most one vmcoreinfo device is permitted");
        return false;
    }
    if (!fw_cfg_dma_enabled()) {
        error_setg(errp, "vmcoreinfo device requires fw_cfg with DMA");
        return false;
    }
    vmcoreinfo = g_new0(VMCoreInfoDevice, 1);
    vmcoreinfo_reset(vmcoreinfo);
    if (!fw_cfg_add_file(FW_CFG_VMCOREINFO_FILENAME, vmcoreinfo->file,
                         sizeof(vmcoreinfo->file), vmcoreinfo_write, vmcoreinfo,
                         NULL, errp)) {
        g_clear_pointer(&vmcoreinfo, g_free);
        return false;
    }
    return true;
}

void vmcoreinfo_set(uint16_t guest_format, uint32_t size, uint64_t paddr)
{
    uint16_t f = GUINT16_TO_LE(guest_format);
    uint32_t sz = GUINT32_TO_LE(size);
    uint64_t pa = GUINT64_TO_LE(paddr);

    g_assert(vmcoreinfo);
    memcpy(vmcoreinfo->file + 2, &f, 2);
    memcpy(vmcoreinfo->file + 4, &sz, 4);
    memcpy(vmcoreinfo->file + 8, &pa, 8);
    vmcoreinfo_write(vmcoreinfo, 0, sizeof(vmcoreinfo->file));
}

void vmcoreinfo_cleanup(void)
{
    g_clear_pointer(&vmcoreinfo, g_free);
}

const VMCoreInfoState *vmcoreinfo_find(void)
{
    return vmcoreinfo ? &vmcoreinfo->state : NULL;
}
