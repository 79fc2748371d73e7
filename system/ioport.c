/* The x86 I/O port space: a few devices on ports, everything else unassigned. */
#include <glib.h>

#include "system/machine-internal.h"

typedef struct IOPortRange {
    uint16_t base;
    uint16_t len;
    unsigned max_size;
    IOPortReadFunc *rd;
    IOPortWriteFunc *wr;
    void *opaque;
} IOPortRange;

static GArray *ranges;

void ioport_register(uint16_t base, uint16_t len, unsigned max_size,
                     IOPortReadFunc *rd, IOPortWriteFunc *wr, void *opaque)
{
    IOPortRange r = { base, len, max_size, rd, wr, opaque };

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

/* How much of an access at port the device there takes in one go. */
static unsigned piece_size(const IOPortRange *r, uint32_t port, unsigned left)
{
    if (!r) {
        return 1;
    }
    return MIN(MIN(left, r->max_size), r->base + r->len - port);
}

uint32_t ioport_read(uint16_t port, unsigned size)
{
    uint32_t val = 0;
    unsigned done = 0;

    while (done < size) {
        uint32_t p = (uint32_t)port + done;
        const IOPortRange *r = p <= 0xffff ? find_range(p) : NULL;
        unsigned n = piece_size(r, p, size - done);
        uint32_t mask = n >= 4 ? 0xffffffffu : (1u << (n * 8)) - 1;
        uint32_t piece = r && r->rd ? r->rd(r->opaque, p - r->base, n) & mask : mask;

        val |= piece << (8 * done);
        done += n;
    }
    return val;
}

void ioport_write(uint16_t port, uint32_t val, unsigned size)
{
    unsigned done = 0;

    while (done < size) {
        uint32_t p = (uint32_t)port + done;
        const IOPortRange *r = p <= 0xffff ? find_range(p) : NULL;
        unsigned n = piece_size(r, p, size - done);
        uint32_t mask = n >= 4 ? 0xffffffffu : (1u << (n * 8)) - 1;

        if (r && r->wr) {
            r->wr(r->opaque, p - r->base, (val >> (8 * done)) & mask, n);
        }
        done += n;
    }
}
