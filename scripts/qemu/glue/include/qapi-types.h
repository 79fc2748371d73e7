/* Maps guestdump's generated "qapi-types.h" to QEMU's generated dump types. */
#ifndef GUESTDUMP_QEMU_QAPI_TYPES_H
#define GUESTDUMP_QEMU_QAPI_TYPES_H
#include "qapi/qapi-types-dump.h"
#endif
