/* Maps guestdump's generated "qapi-events.h" to QEMU's generated dump events. */
#ifndef GUESTDUMP_QEMU_QAPI_EVENTS_H
#define GUESTDUMP_QEMU_QAPI_EVENTS_H
#include "qapi/qapi-events-dump.h"

/*
 * QEMU 7.2's generator still passes has_FOO for optional pointer members
 * (8.0 dropped it), guestdump's does not: the module's call goes through
 * this adapter. The macro is defined after the real declaration, and a
 * macro does not expand inside itself, so the adapter calls QEMU's function.
 */
static inline void guestdump_send_dump_completed(const DumpQueryResult *result,
                                                 const char *error)
{
    qapi_event_send_dump_completed((DumpQueryResult *)result, error != NULL, error);
}
#define qapi_event_send_dump_completed guestdump_send_dump_completed
#endif
