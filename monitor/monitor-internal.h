/* Monitor internals shared by the QMP, HMP, transport and fd-store files. */
#ifndef MONITOR_MONITOR_INTERNAL_H
#define MONITOR_MONITOR_INTERNAL_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

#include "monitor/monitor.h"
#include "monitor/qmp-json.h"

typedef struct MonitorServer MonitorServer;

/* Connected clients over all listeners; more are refused. */
#define MONITOR_MAX_CLIENTS 64
/* At most this many fds may wait for a command to claim them. */
#define MONITOR_MAX_PENDING_FDS 64
/* Output a slow peer has not read yet; beyond this it is disconnected. */
#define MONITOR_MAX_OUTBUF (256u << 20)
/*
 * Input and output buffered for all clients together. Alone, the bounds per
 * client let 64 clients hold about 20 GiB; beyond this budget the client
 * holding most is dropped. 512 MiB leaves room for one client at its own
 * limits (64 MiB of input, 256 MiB of output) and the others.
 * GUESTDUMP_MONITOR_BUDGET (bytes) overrides it, for tests.
 */
#define MONITOR_MAX_BUFFERED_TOTAL (512u << 20)
/* One HMP line; longer lines are refused (QEMU's readline stops at 4 KiB). */
#define MONITOR_MAX_HMP_LINE 4096

typedef struct MonitorNamedFd {
    char *name;
    int fd;
} MonitorNamedFd;

/*
 * One client connection (or stdio), speaking QMP or HMP. A Monitor with
 * in_fd < 0 is a transient HMP monitor used by human-monitor-command: its
 * output is collected in capture.
 */
struct Monitor {
    bool qmp;
    bool negotiated;          /* QMP: qmp_capabilities accepted */
    bool oob_enabled;
    bool dead;                /* peer gone; freed when unwinding is safe */
    int busy;                 /* >0 while dispatching: do not free */

    int in_fd;
    int out_fd;
    bool can_pass_fds;        /* unix socket */
    guint in_watch;
    guint out_watch;
    GString *outbuf;

    QmpJsonStreamer *js;
    GString *line;            /* HMP input line */
    bool line_overflow;
    GString *capture;         /* transient HMP: output goes here */

    GQueue pending_fds;       /* SCM_RIGHTS fds not yet claimed (int) */
    GList *named_fds;         /* MonitorNamedFd, from getfd */

    MonitorServer *server;
};

/* Transport (monitor.c). */
void monitor_send(Monitor *mon, const char *data, size_t len);
void monitor_set_cur(Monitor *mon);
/* Takes the most recent fd sent with SCM_RIGHTS, or -1. */
int monitor_take_pending_fd(Monitor *mon);
/* Closes fds that arrived with a command that did not use them. */
void monitor_drop_pending_fds(Monitor *mon);
/* Every connected, negotiated QMP monitor. */
GList *monitor_qmp_clients(void);
/* Flushes all output (blocking, bounded by timeout) before exit. */
void monitor_flush_all(int timeout_ms);

/* QMP (qmp.c). */
void monitor_qmp_greet(Monitor *mon);
void monitor_qmp_handle(void *opaque, JsonNode *req, Error *err);

/* HMP (hmp.c). */
void monitor_hmp_greet(Monitor *mon);
void monitor_hmp_feed(Monitor *mon, const char *buf, size_t len);
/* Runs one command line on mon (output through monitor_printf). */
void monitor_hmp_execute(Monitor *mon, const char *line);

/* Named fds of a monitor (fds.c). */
void monitor_fds_cleanup(Monitor *mon);
/*
 * The last monitor connection is gone: as QEMU (mon_refcount == 0), fd sets
 * are released while the guest runs, since no client could remove them any
 * more; a set with a dup still in use stays until monitor_fdset_dup_fd_remove.
 */
void monitor_fdsets_cleanup(void);
/* Whether any monitor connection is open (QEMU's mon_refcount > 0). */
bool monitor_has_clients(void);

#endif
