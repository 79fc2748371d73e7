/* Little-endian loads at any alignment, for file formats and guest memory. */
#ifndef QEMU_BSWAP_H
#define QEMU_BSWAP_H

#include <glib.h>
#include <stdint.h>
#include <string.h>

/* memcpy, not a cast: the bytes come from files and guest RAM at any offset. */
static inline uint16_t lduw_le_p(const void *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT16_FROM_LE(v);
}

static inline uint32_t ldl_le_p(const void *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_LE(v);
}

static inline uint64_t ldq_le_p(const void *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return GUINT64_FROM_LE(v);
}

#endif
