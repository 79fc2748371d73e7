/* The monitor as the rest of the program sees it: current monitor, fds, output. */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "qapi/error.h"

typedef struct Monitor Monitor;

/*
 * The monitor whose command is running on this thread, or NULL (for example
 * on a dump worker thread). Set by the monitor around every QMP and HMP
 * command it dispatches.
 */
Monitor *monitor_cur(void);
bool monitor_is_qmp(const Monitor *mon);

/*
 * Takes the fd passed to mon with getfd under fdname: the entry is removed
 * and the caller owns the fd. Error: "File descriptor named '%s' has not
 * been found".
 */
int monitor_get_fd(Monitor *mon, const char *fdname, Error **errp);

/*
 * For a program without monitors (guestdump-convert): fd becomes what
 * fd:FDNAME names when no monitor is current, taken once like a getfd fd.
 */
void monitor_add_host_fd(const char *fdname, int fd);

/*
 * Duplicates the first fd of fd set fdset_id (add-fd) whose access mode
 * (F_GETFL & O_ACCMODE) equals flags & O_ACCMODE, applies the other status
 * flags of flags with F_SETFL and returns the new fd (O_CLOEXEC), or -1 with
 * errno set: ENOENT for an unknown set or no fd in it, EACCES for a set
 * with fds whose mode does not match.
 */
int monitor_fdset_dup_fd_add(int64_t fdset_id, int flags);

/*
 * The fd monitor_fdset_dup_fd_add returned is closed (call it after the
 * close; an fd that came from elsewhere is ignored). Until then its set is
 * kept even when the last client disconnects, as in QEMU.
 */
void monitor_fdset_dup_fd_remove(int dup_fd);

/*
 * Opens path like open(2), understanding "/dev/fdset/N" (as QEMU's
 * qemu_open_old does: O_TRUNC on a set's fd means ftruncate to 0).
 * On failure returns -1 and sets "Could not open '%s': <strerror>".
 */
int qemu_open_old(const char *path, int flags, mode_t mode, Error **errp);

/* HMP output (no-op for a QMP monitor or NULL). */
void monitor_printf(Monitor *mon, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/*
 * "warning: <msg>\n" to the current HMP monitor if there is one, else to
 * stderr, as QEMU's warn_report does.
 */
void warn_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

#endif
