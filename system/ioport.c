/* The x86 I/O port space: a few devices on ports, everything else unassigned. */
#include <glib.h>

#include "system/machine-internal.h"

typedef struct IOPortRange {
    uint16_t base;
    uint16_t len;
    IOPortReadFunc *rd;
    IOPortWriteFunc *wr;
    void *opaque;
} IOPortRange;

static GArray *ranges;

void ioport_register(uint16_t base, uint16_t len, IOPortReadFunc *rd,
                     IOPortWriteFunc *wr, void *opaque)
{
    IOPortRange r = { base, len, rd, wr, opaque };

    if (!ranges) {
        ranges = g_array_new(FALSE, TRUE, sizeof(IOPortRange));
    }
    g_array_append_val(ranges, r);
}

void ioport_reset(void)
{
    if (ranges) {
        g_array_free(ranges, TRUE);
        ranges = NULL;
    }
}

static const IOPortRange *find_range(uint16_t port)
{
    for (guint i = 0; ranges && i < ranges->len; i++) {
        const IOPortRange *r = &g_array_index(ranges, IOPortRange, i);
        if (port >= r->base && port - r->base < r->len) {
            return r;
        }
    }
    return NULL;
}

/*
 * An access that starts in a device goes to that device whole; devices
 * decide what sizes they accept, as QEMU's memory-region ops do.
 */
uint32_t ioport_read(uint16_t port, unsigned size)
{
    const IOPortRange *r = find_range(port);
    uint32_t mask = size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;

    if (!r || !r->rd) {
        return mask;
    }
    return r->rd(r->opaque, port - r->base, size) & mask;
}

void ioport_write(uint16_t port, uint32_t val, unsigned size)
{
    const IOPortRange *r = find_range(port);
    uint32_t mask = size >= 4 ? 0xffffffffu : (1u << (size * 8)) - 1;

    if (r && r->wr) {
        r->wr(r->opaque, port - r->base, val & mask, size);
    }
}
