/* Monitor transports from the command line: -qmp, -monitor, -chardev, -mon. */
#ifndef MONITOR_CHARDEV_H
#define MONITOR_CHARDEV_H

#include <stdbool.h>

#include "qapi/error.h"

/*
 * A backend spec as QEMU's -qmp/-monitor take it: "stdio",
 * "unix:PATH[,server=on|off][,wait=on|off]" (also "server,nowait"),
 * "tcp:[HOST]:PORT[,server=on][,wait=off]" (HOST empty = 127.0.0.1; we do
 * not listen on every address unless asked). With server=on we listen:
 * wait=on (QEMU's default for a server) blocks startup until the first
 * client connects, and a listening socket accepts several clients, each with
 * its own state. Without server=on we connect once at startup, as QEMU does.
 */
bool monitor_add_qmp(const char *spec, Error **errp);
bool monitor_add_hmp(const char *spec, Error **errp);

/* -chardev socket,id=X,path=P|host=H,port=N,server=on,wait=off | stdio,id=X */
bool monitor_chardev_add(const char *opts, Error **errp);
/* -mon chardev=X[,mode=control|readline] (readline = HMP, the default) */
bool monitor_mon_add(const char *opts, Error **errp);

/* Starts listening on everything added (after -S/-machine are known). */
bool monitor_start(Error **errp);

/* Closes every client and listener and unlinks the unix sockets we created. */
void monitor_cleanup(void);

#endif
