/* fw_cfg: QEMU's firmware configuration device on ports 0x510/0x511/0x514, with DMA. */
#ifndef HW_FW_CFG_H
#define HW_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

#define FW_CFG_IO_BASE        0x510
#define FW_CFG_DMA_IO_BASE    0x514

#define FW_CFG_SIGNATURE      0x00
#define FW_CFG_ID             0x01
#define FW_CFG_UUID           0x02
#define FW_CFG_RAM_SIZE       0x03
#define FW_CFG_NB_CPUS        0x05
#define FW_CFG_MAX_CPUS       0x0f
#define FW_CFG_FILE_DIR       0x19
#define FW_CFG_FILE_FIRST     0x20
#define FW_CFG_FILE_SLOTS     0x20
#define FW_CFG_MAX_ENTRY      (FW_CFG_FILE_FIRST + FW_CFG_FILE_SLOTS)
#define FW_CFG_WRITE_CHANNEL  0x4000
#define FW_CFG_ARCH_LOCAL     0x8000
#define FW_CFG_ENTRY_MASK     ((uint16_t)~(FW_CFG_WRITE_CHANNEL | FW_CFG_ARCH_LOCAL))
#define FW_CFG_INVALID        0xffff

#define FW_CFG_VERSION        0x01
#define FW_CFG_VERSION_DMA    0x02

#define FW_CFG_DMA_CTL_ERROR  0x01
#define FW_CFG_DMA_CTL_READ   0x02
#define FW_CFG_DMA_CTL_SKIP   0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE  0x10

/* What a read of the DMA port returns: "QEMU CFG", big-endian. */
#define FW_CFG_DMA_SIGNATURE  0x51454d5520434647ULL

#define FW_CFG_MAX_FILE_PATH  56

/* Called after the guest wrote len bytes at offset into a writable file. */
typedef void FWCfgWriteCallback(void *opaque, uint32_t offset, uint32_t len);

/* Creates the device and maps its ports; dma: advertise and accept DMA. */
void fw_cfg_init(bool dma);
bool fw_cfg_present(void);
bool fw_cfg_dma_enabled(void);
/* Drops every entry and unmaps the ports. */
void fw_cfg_cleanup(void);

/* A numbered item; data is copied. */
void fw_cfg_add_bytes(uint16_t key, const void *data, size_t len);
/*
 * A named file; data (len bytes) stays owned by the caller and is what the
 * guest reads and, when write_cb is set, writes. Returns the select key.
 */
bool fw_cfg_add_file(const char *name, void *data, size_t len,
                     FWCfgWriteCallback *write_cb, void *opaque,
                     uint16_t *key, Error **errp);
/* Select key of a named file, or FW_CFG_INVALID. */
uint16_t fw_cfg_file_key(const char *name);

#endif
