/* fw_cfg device: items, file directory, port I/O and DMA checked against guest RAM. */
#include <string.h>

#include <glib.h>

#include "hw/fw_cfg.h"
#include "sysemu/physmem.h"
#include "system/machine-internal.h"

typedef struct FWCfgEntry {
    uint8_t *data;
    uint32_t len;
    bool owned;                 /* data was copied in and is freed with the device */
    bool allow_write;
    FWCfgWriteCallback *write_cb;
    void *opaque;
} FWCfgEntry;

typedef struct FWCfgFile {
    uint32_t size;              /* big-endian in the directory */
    uint16_t select;
    uint16_t reserved;
    char name[FW_CFG_MAX_FILE_PATH];
} FWCfgFile;

_Static_assert(sizeof(FWCfgFile) == 64, "fw_cfg directory entry is 64 bytes");

/* The guest's DMA descriptor, big-endian in guest memory. */
typedef struct FWCfgDmaAccess {
    uint32_t control;
    uint32_t length;
    uint64_t address;
} FWCfgDmaAccess;

_Static_assert(sizeof(FWCfgDmaAccess) == 16, "FWCfgDmaAccess is 16 bytes");

typedef struct FWCfgState {
    FWCfgEntry entries[2][FW_CFG_MAX_ENTRY];
    uint8_t *dir;               /* count (BE32) + FWCfgFile[] */
    uint32_t file_count;
    char file_names[FW_CFG_FILE_SLOTS][FW_CFG_MAX_FILE_PATH];
    uint16_t cur_entry;
    uint32_t cur_offset;
    uint64_t dma_addr;
    bool dma;
} FWCfgState;

static FWCfgState *fw_cfg;

bool fw_cfg_present(void)
{
    return fw_cfg != NULL;
}

bool fw_cfg_dma_enabled(void)
{
    return fw_cfg && fw_cfg->dma;
}

static FWCfgEntry *current_entry(FWCfgState *s)
{
    if (s->cur_entry == FW_CFG_INVALID) {
        return NULL;
    }
    return &s->entries[!!(s->cur_entry & FW_CFG_ARCH_LOCAL)]
                      [s->cur_entry & FW_CFG_ENTRY_MASK];
}

static void fw_cfg_select(FWCfgState *s, uint16_t key)
{
    s->cur_offset = 0;
    if ((key & FW_CFG_ENTRY_MASK) >= FW_CFG_MAX_ENTRY) {
        s->cur_entry = FW_CFG_INVALID;
    } else {
        s->cur_entry = key;
    }
}

static uint8_t fw_cfg_read_byte(FWCfgState *s)
{
    FWCfgEntry *e = current_entry(s);

    if (!e || !e->data || s->cur_offset >= e->len) {
        return 0;
    }
    return e->data[s->cur_offset++];
}

/* Sets FW_CFG_DMA_CTL_ERROR when guest memory cannot take the transfer. */
static uint32_t dma_run(FWCfgState *s, FWCfgDmaAccess *dma)
{
    uint32_t control = dma->control;
    uint32_t result = 0;
    bool rd = false, wr = false;

    if (control & FW_CFG_DMA_CTL_SELECT) {
        fw_cfg_select(s, control >> 16);
    }
    if (control & FW_CFG_DMA_CTL_READ) {
        rd = true;
    } else if (control & FW_CFG_DMA_CTL_WRITE) {
        wr = true;
    } else if (!(control & FW_CFG_DMA_CTL_SKIP)) {
        dma->length = 0;
    }

    /* Each pass consumes at least one byte or ends with an error: bounded. */
    while (dma->length > 0 && !(result & FW_CFG_DMA_CTL_ERROR)) {
        FWCfgEntry *e = current_entry(s);
        uint32_t len;

        if (!e || !e->data || s->cur_offset >= e->len) {
            len = dma->length;
            if (rd) {
                /* Checked whole first, so a bad range leaves RAM untouched. */
                g_autofree uint8_t *zeros = g_malloc0(MIN(len, 1u << 20));
                bool ok = physmem_is_ram(dma->address, len);

                for (uint32_t done = 0; ok && done < len;) {
                    uint32_t n = MIN(len - done, 1u << 20);
                    ok = physmem_write(dma->address + done, zeros, n, NULL);
                    done += n;
                }
                if (!ok) {
                    result |= FW_CFG_DMA_CTL_ERROR;
                }
            }
            if (wr) {
                result |= FW_CFG_DMA_CTL_ERROR;
            }
        } else {
            len = MIN(dma->length, e->len - s->cur_offset);
            if (rd && !physmem_write(dma->address, e->data + s->cur_offset,
                                     len, NULL)) {
                result |= FW_CFG_DMA_CTL_ERROR;
            }
            if (wr) {
                /* Writes never grow a file; a short fit is an error, as in QEMU. */
                if (!e->allow_write || len != dma->length ||
                    !physmem_read(dma->address, e->data + s->cur_offset, len,
                                  NULL)) {
                    result |= FW_CFG_DMA_CTL_ERROR;
                } else if (e->write_cb) {
                    e->write_cb(e->opaque, s->cur_offset, len);
                }
            }
            s->cur_offset += len;
        }
        dma->address += len;
        dma->length -= len;
    }
    return result;
}

static void dma_transfer(FWCfgState *s)
{
    uint64_t addr = s->dma_addr;
    FWCfgDmaAccess dma;
    uint32_t control_be;

    s->dma_addr = 0;
    if (!physmem_read(addr, &dma, sizeof(dma), NULL)) {
        /* Nothing more can be done: the descriptor is not in RAM. */
        control_be = GUINT32_TO_BE(FW_CFG_DMA_CTL_ERROR);
        physmem_write(addr, &control_be, sizeof(control_be), NULL);
        return;
    }
    dma.control = GUINT32_FROM_BE(dma.control);
    dma.length = GUINT32_FROM_BE(dma.length);
    dma.address = GUINT64_FROM_BE(dma.address);
    control_be = GUINT32_TO_BE(dma_run(s, &dma));
    physmem_write(addr, &control_be, sizeof(control_be), NULL);
}

/*
 * Ports 0x510-0x511 as QEMU's combined region: a 16-bit write at 0x510
 * selects, any byte read (at either port) reads data, 16-bit reads give 0.
 */
static uint32_t fw_cfg_io_read(void *opaque, uint16_t offset, unsigned size)
{
    FWCfgState *s = opaque;

    if (size == 1) {
        return fw_cfg_read_byte(s);
    }
    return 0;
}

static void fw_cfg_io_write(void *opaque, uint16_t offset, uint32_t val,
                            unsigned size)
{
    FWCfgState *s = opaque;

    /* Data-port writes have been ignored since QEMU 2.4: DMA is the write path. */
    if (offset == 0 && size == 2) {
        fw_cfg_select(s, val);
    }
}

/* Ports 0x514-0x51b: the DMA address register, big-endian as on every target. */
static uint32_t fw_cfg_dma_read(void *opaque, uint16_t offset, unsigned size)
{
    uint8_t sig[8];
    uint32_t v = 0;

    for (int i = 0; i < 8; i++) {
        sig[i] = FW_CFG_DMA_SIGNATURE >> (56 - 8 * i);
    }
    /* The port is big-endian: byte 0 of the register lands in the low byte. */
    for (unsigned i = 0; i < size && offset + i < 8; i++) {
        v |= (uint32_t)sig[offset + i] << (8 * i);
    }
    return v;
}

static void fw_cfg_dma_write(void *opaque, uint16_t offset, uint32_t val,
                             unsigned size)
{
    FWCfgState *s = opaque;

    if (size != 4) {
        return;
    }
    /* A little-endian guest's outl arrives byte-swapped on a big-endian port. */
    val = GUINT32_SWAP_LE_BE(val);
    if (offset == 0) {
        s->dma_addr = (uint64_t)val << 32;
    } else if (offset == 4) {
        s->dma_addr |= val;
        dma_transfer(s);
    }
}

void fw_cfg_add_bytes(uint16_t key, const void *data, size_t len)
{
    FWCfgEntry *e;

    g_assert(fw_cfg && (key & FW_CFG_ENTRY_MASK) < FW_CFG_MAX_ENTRY);
    e = &fw_cfg->entries[!!(key & FW_CFG_ARCH_LOCAL)][key & FW_CFG_ENTRY_MASK];
    if (e->owned) {
        g_free(e->data);
    }
    *e = (FWCfgEntry) { .data = g_memdup2(data, len), .len = len, .owned = true };
}

/* Rebuilds the directory: names sorted, keys given in sorted order from 0x20. */
static void rebuild_dir(FWCfgState *s, FWCfgEntry *saved)
{
    uint32_t n = s->file_count;
    size_t dir_len = 4 + n * sizeof(FWCfgFile);
    uint32_t count_be = GUINT32_TO_BE(n);

    g_free(s->dir);
    s->dir = g_malloc0(dir_len);
    memcpy(s->dir, &count_be, 4);
    for (uint32_t i = 0; i < n; i++) {
        FWCfgFile f = { 0 };
        f.size = GUINT32_TO_BE(saved[i].len);
        f.select = GUINT16_TO_BE(FW_CFG_FILE_FIRST + i);
        memcpy(f.name, s->file_names[i], FW_CFG_MAX_FILE_PATH);
        memcpy(s->dir + 4 + i * sizeof(f), &f, sizeof(f));
        s->entries[0][FW_CFG_FILE_FIRST + i] = saved[i];
    }
    s->entries[0][FW_CFG_FILE_DIR] = (FWCfgEntry) { .data = s->dir, .len = dir_len };
}

bool fw_cfg_add_file(const char *name, void *data, size_t len,
                     FWCfgWriteCallback *write_cb, void *opaque,
                     uint16_t *key, Error **errp)
{
    FWCfgState *s = fw_cfg;
    FWCfgEntry saved[FW_CFG_FILE_SLOTS];
    uint32_t pos;

    g_assert(s);
    if (strlen(name) >= FW_CFG_MAX_FILE_PATH) {
        error_setg(errp, "fw_cfg file name too long: %s", name);
        return false;
    }
    if (s->file_count >= FW_CFG_FILE_SLOTS) {
        error_setg(errp, "fw_cfg: no more file slots for %s", name);
        return false;
    }
    for (pos = 0; pos < s->file_count; pos++) {
        int c = strcmp(name, s->file_names[pos]);
        if (c == 0) {
            error_setg(errp, "duplicate fw_cfg file name: %s", name);
            return false;
        }
        if (c < 0) {
            break;
        }
    }
    for (uint32_t i = 0; i < s->file_count; i++) {
        saved[i] = s->entries[0][FW_CFG_FILE_FIRST + i];
    }
    memmove(&saved[pos + 1], &saved[pos], (s->file_count - pos) * sizeof(saved[0]));
    memmove(s->file_names[pos + 1], s->file_names[pos],
            (s->file_count - pos) * FW_CFG_MAX_FILE_PATH);
    memset(s->file_names[pos], 0, FW_CFG_MAX_FILE_PATH);
    strcpy(s->file_names[pos], name);
    saved[pos] = (FWCfgEntry) {
        .data = data, .len = len, .allow_write = write_cb != NULL,
        .write_cb = write_cb, .opaque = opaque,
    };
    s->file_count++;
    rebuild_dir(s, saved);
    if (key) {
        *key = FW_CFG_FILE_FIRST + pos;
    }
    return true;
}

uint16_t fw_cfg_file_key(const char *name)
{
    for (uint32_t i = 0; fw_cfg && i < fw_cfg->file_count; i++) {
        if (!strcmp(fw_cfg->file_names[i], name)) {
            return FW_CFG_FILE_FIRST + i;
        }
    }
    return FW_CFG_INVALID;
}

void fw_cfg_init(bool dma)
{
    uint32_t id = FW_CFG_VERSION | (dma ? FW_CFG_VERSION_DMA : 0);

    fw_cfg_cleanup();
    fw_cfg = g_new0(FWCfgState, 1);
    fw_cfg->dma = dma;
    fw_cfg->cur_entry = FW_CFG_INVALID;
    fw_cfg_add_bytes(FW_CFG_SIGNATURE, "QEMU", 4);
    id = GUINT32_TO_LE(id);
    fw_cfg_add_bytes(FW_CFG_ID, &id, 4);
    rebuild_dir(fw_cfg, NULL);
    ioport_register(FW_CFG_IO_BASE, 2, 2, fw_cfg_io_read, fw_cfg_io_write, fw_cfg);
    if (dma) {
        ioport_register(FW_CFG_DMA_IO_BASE, 8, 4, fw_cfg_dma_read, fw_cfg_dma_write,
                        fw_cfg);
    }
}

void fw_cfg_cleanup(void)
{
    if (!fw_cfg) {
        return;
    }
    for (int a = 0; a < 2; a++) {
        for (int k = 0; k < FW_CFG_MAX_ENTRY; k++) {
            if (fw_cfg->entries[a][k].owned) {
                g_free(fw_cfg->entries[a][k].data);
            }
        }
    }
    g_free(fw_cfg->dir);
    g_free(fw_cfg);
    fw_cfg = NULL;
}
