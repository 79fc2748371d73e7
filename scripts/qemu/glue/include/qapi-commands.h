/* Maps guestdump's generated "qapi-commands.h" to QEMU's generated dump commands. */
#ifndef GUESTDUMP_QEMU_QAPI_COMMANDS_H
#define GUESTDUMP_QEMU_QAPI_COMMANDS_H
#include "qapi/qapi-commands-dump.h"
#endif
