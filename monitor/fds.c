/* The fd store: named fds per monitor (getfd) and global fd sets (add-fd). */
#include "monitor-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qapi-commands.h"
#include "sysemu/runstate.h"

/* ---------------------------------------------------------------------- */
/* Named fds (getfd / closefd / fd:NAME)                                    */
/* ---------------------------------------------------------------------- */

static MonitorNamedFd *named_fd_find(Monitor *mon, const char *name)
{
    for (GList *l = mon->named_fds; l; l = l->next) {
        MonitorNamedFd *nf = l->data;
        if (!strcmp(nf->name, name)) {
            return nf;
        }
    }
    return NULL;
}

static void named_fd_remove(Monitor *mon, MonitorNamedFd *nf, bool close_fd)
{
    mon->named_fds = g_list_remove(mon->named_fds, nf);
    if (close_fd) {
        close(nf->fd);
    }
    g_free(nf->name);
    g_free(nf);
}

void monitor_fds_cleanup(Monitor *mon)
{
    while (mon->named_fds) {
        named_fd_remove(mon, mon->named_fds->data, true);
    }
}

void qmp_getfd(const char *fdname, Error **errp)
{
    Monitor *mon = monitor_cur();
    int fd = monitor_take_pending_fd(mon);

    if (fd < 0) {
        error_setg(errp, "No file descriptor supplied via SCM_RIGHTS");
        return;
    }
    if (g_ascii_isdigit(fdname[0])) {
        close(fd);
        error_setg(errp, "Parameter 'fdname' expects a name not starting with a digit");
        return;
    }
    MonitorNamedFd *nf = named_fd_find(mon, fdname);
    if (nf) {
        /* Same name again: the new fd replaces the old one, as in QEMU. */
        close(nf->fd);
        nf->fd = fd;
        return;
    }
    nf = g_new0(MonitorNamedFd, 1);
    nf->name = g_strdup(fdname);
    nf->fd = fd;
    mon->named_fds = g_list_append(mon->named_fds, nf);
}

void qmp_closefd(const char *fdname, Error **errp)
{
    Monitor *mon = monitor_cur();
    MonitorNamedFd *nf = mon ? named_fd_find(mon, fdname) : NULL;

    if (!nf) {
        error_setg(errp, "File descriptor named '%s' not found", fdname);
        return;
    }
    named_fd_remove(mon, nf, true);
}

/*
 * fds a program without monitors hands to fd:NAME (guestdump-convert's
 * standard output); looked up when no monitor is current. Main thread only.
 */
static GList *host_named_fds;

void monitor_add_host_fd(const char *fdname, int fd)
{
    MonitorNamedFd *nf = g_new0(MonitorNamedFd, 1);

    nf->name = g_strdup(fdname);
    nf->fd = fd;
    host_named_fds = g_list_append(host_named_fds, nf);
}

static int host_fd_take(const char *fdname)
{
    for (GList *l = host_named_fds; l; l = l->next) {
        MonitorNamedFd *nf = l->data;

        if (!strcmp(nf->name, fdname)) {
            int fd = nf->fd;

            host_named_fds = g_list_delete_link(host_named_fds, l);
            g_free(nf->name);
            g_free(nf);
            return fd;
        }
    }
    return -1;
}

int monitor_get_fd(Monitor *mon, const char *fdname, Error **errp)
{
    MonitorNamedFd *nf = mon ? named_fd_find(mon, fdname) : NULL;

    if (!mon) {
        int fd = host_fd_take(fdname);

        if (fd >= 0) {
            return fd;
        }
    }
    if (!nf) {
        error_setg(errp, "File descriptor named '%s' has not been found", fdname);
        return -1;
    }
    int fd = nf->fd;
    named_fd_remove(mon, nf, false);
    return fd;
}

/* ---------------------------------------------------------------------- */
/* Fd sets (add-fd / remove-fd / query-fdsets / /dev/fdset/N)               */
/* ---------------------------------------------------------------------- */

typedef struct FdsetFd {
    int fd;
    char *opaque;
} FdsetFd;

typedef struct Fdset {
    int64_t id;
    GList *fds;                 /* FdsetFd, newest first as in QEMU */
    GList *dup_fds;             /* GINT_TO_POINTER(fd) handed out and still open */
} Fdset;

/* Sorted by id; add-fd, remove-fd and qemu_open_old run on the main thread only. */
static GList *fdsets;
static GMutex fdset_lock;

static Fdset *fdset_find(int64_t id)
{
    for (GList *l = fdsets; l; l = l->next) {
        Fdset *set = l->data;
        if (set->id == id) {
            return set;
        }
    }
    return NULL;
}

static gint fdset_cmp(gconstpointer a, gconstpointer b)
{
    const Fdset *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void fdset_fd_free(FdsetFd *f)
{
    close(f->fd);
    g_free(f->opaque);
    g_free(f);
}

/* Caller holds fdset_lock. A set whose dup is still in use stays, as in QEMU. */
static void fdset_free_unless_in_use(Fdset *set)
{
    if (set->dup_fds) {
        return;
    }
    g_list_free_full(set->fds, (GDestroyNotify)fdset_fd_free);
    fdsets = g_list_remove(fdsets, set);
    g_free(set);
}

AddfdInfo *qmp_add_fd(bool has_fdset_id, int64_t fdset_id, const char *opaque,
                      Error **errp)
{
    Monitor *mon = monitor_cur();
    int fd = monitor_take_pending_fd(mon);

    if (fd < 0) {
        error_setg(errp, "No file descriptor supplied via SCM_RIGHTS");
        return NULL;
    }
    g_mutex_lock(&fdset_lock);
    Fdset *set = has_fdset_id ? fdset_find(fdset_id) : NULL;
    if (!set) {
        if (has_fdset_id && fdset_id < 0) {
            g_mutex_unlock(&fdset_lock);
            close(fd);
            error_setg(errp, "Parameter 'fdset-id' expects a non-negative value");
            return NULL;
        }
        if (!has_fdset_id) {
            /* The lowest id not in use, as QEMU picks it. */
            fdset_id = 0;
            for (GList *l = fdsets; l; l = l->next) {
                Fdset *s = l->data;
                if (s->id == fdset_id) {
                    fdset_id++;
                } else if (s->id > fdset_id) {
                    break;
                }
            }
        }
        set = g_new0(Fdset, 1);
        set->id = fdset_id;
        fdsets = g_list_insert_sorted(fdsets, set, fdset_cmp);
    }
    FdsetFd *f = g_new0(FdsetFd, 1);
    f->fd = fd;
    f->opaque = g_strdup(opaque);
    set->fds = g_list_prepend(set->fds, f);
    g_mutex_unlock(&fdset_lock);

    AddfdInfo *info = g_new0(AddfdInfo, 1);
    info->fdset_id = set->id;
    info->fd = fd;
    return info;
}

void qmp_remove_fd(int64_t fdset_id, bool has_fd, int64_t fd, Error **errp)
{
    g_mutex_lock(&fdset_lock);
    Fdset *set = fdset_find(fdset_id);
    bool found = false;

    if (set) {
        for (GList *l = set->fds; l;) {
            GList *next = l->next;
            FdsetFd *f = l->data;
            if (!has_fd || f->fd == fd) {
                fdset_fd_free(f);
                set->fds = g_list_delete_link(set->fds, l);
                found = true;
            }
            l = next;
        }
        /*
         * QEMU 7.2 answers a whole-set remove-fd with success but keeps the
         * fds listed; we really release them (docs/compat.md).
         */
        if (!set->fds) {
            fdset_free_unless_in_use(set);
        }
    }
    g_mutex_unlock(&fdset_lock);
    if (!found) {
        if (has_fd) {
            error_setg(errp, "File descriptor named 'fdset-id:%" PRId64 ", fd:%" PRId64
                       "' not found", fdset_id, fd);
        } else {
            error_setg(errp, "File descriptor named 'fdset-id:%" PRId64 "' not found",
                       fdset_id);
        }
    }
}

void monitor_fdsets_cleanup(void)
{
    /* As 7.2: a paused guest (-S, stop) keeps its sets, e.g. for a migration. */
    if (!runstate_is_running()) {
        return;
    }
    g_mutex_lock(&fdset_lock);
    for (GList *l = fdsets; l;) {
        GList *next = l->next;
        fdset_free_unless_in_use(l->data);
        l = next;
    }
    g_mutex_unlock(&fdset_lock);
}

void monitor_fdset_dup_fd_remove(int dup_fd)
{
    g_mutex_lock(&fdset_lock);
    for (GList *l = fdsets; l; l = l->next) {
        Fdset *set = l->data;
        GList *d = g_list_find(set->dup_fds, GINT_TO_POINTER(dup_fd));
        if (d) {
            set->dup_fds = g_list_delete_link(set->dup_fds, d);
            /* What the last client's disconnect (or remove-fd) left for us. */
            if (!set->fds || (!monitor_has_clients() && runstate_is_running())) {
                fdset_free_unless_in_use(set);
            }
            break;
        }
    }
    g_mutex_unlock(&fdset_lock);
}

FdsetInfoList *qmp_query_fdsets(Error **errp)
{
    FdsetInfoList *list = NULL;

    g_mutex_lock(&fdset_lock);
    /* QEMU builds both lists by prepending: sets come out highest id first. */
    for (GList *l = fdsets; l; l = l->next) {
        Fdset *set = l->data;
        if (!set->fds) {
            continue;           /* removed, kept only for a dup still in use */
        }
        FdsetInfo *info = g_new0(FdsetInfo, 1);
        info->fdset_id = set->id;
        for (GList *m = set->fds; m; m = m->next) {
            FdsetFd *f = m->data;
            FdsetFdInfo *fi = g_new0(FdsetFdInfo, 1);
            fi->fd = f->fd;
            fi->opaque = g_strdup(f->opaque);
            FdsetFdInfoList *e = g_new0(FdsetFdInfoList, 1);
            e->value = fi;
            e->next = info->fds;
            info->fds = e;
        }
        FdsetInfoList *e = g_new0(FdsetInfoList, 1);
        e->value = info;
        e->next = list;
        list = e;
    }
    g_mutex_unlock(&fdset_lock);
    return list;
}

int monitor_fdset_dup_fd_add(int64_t fdset_id, int flags)
{
    g_mutex_lock(&fdset_lock);
    Fdset *set = fdset_find(fdset_id);
    int found = -1;

    if (!set || !set->fds) {
        g_mutex_unlock(&fdset_lock);
        errno = ENOENT;
        return -1;
    }
    for (GList *l = set->fds; l; l = l->next) {
        FdsetFd *f = l->data;
        int fl = fcntl(f->fd, F_GETFL);
        if (fl < 0) {
            int e = errno;
            g_mutex_unlock(&fdset_lock);
            errno = e;
            return -1;
        }
        if ((fl & O_ACCMODE) == (flags & O_ACCMODE)) {
            found = f->fd;
            break;
        }
    }
    if (found < 0) {
        g_mutex_unlock(&fdset_lock);
        errno = EACCES;
        return -1;
    }
    int dup_fd = fcntl(found, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        g_mutex_unlock(&fdset_lock);
        return -1;
    }
    /* Only the status flags (O_APPEND, O_NONBLOCK, ...) can change here. */
    if (fcntl(dup_fd, F_SETFL, flags & ~(O_ACCMODE | O_CREAT | O_TRUNC | O_EXCL)) < 0) {
        int e = errno;
        g_mutex_unlock(&fdset_lock);
        close(dup_fd);
        errno = e;
        return -1;
    }
    set->dup_fds = g_list_prepend(set->dup_fds, GINT_TO_POINTER(dup_fd));
    g_mutex_unlock(&fdset_lock);
    return dup_fd;
}

int qemu_open_old(const char *path, int flags, mode_t mode, Error **errp)
{
    int fd;

    if (g_str_has_prefix(path, "/dev/fdset/")) {
        const char *num = path + strlen("/dev/fdset/");
        char *end;
        /* As QEMU 7.2 (strtol): "+5" is set 5; a negative number is invalid. */
        errno = 0;
        long long id = strtoll(num, &end, 10);
        if (end == num || *end || errno || id < 0) {
            error_setg_errno(errp, EINVAL, "Could not open '%s'", path);
            return -1;
        }
        fd = monitor_fdset_dup_fd_add(id, flags);
        if (fd < 0) {
            error_setg_errno(errp, errno, "Could not open '%s'", path);
            return -1;
        }
        if ((flags & O_TRUNC) && ftruncate(fd, 0) < 0) {
            int e = errno;
            close(fd);
            monitor_fdset_dup_fd_remove(fd);
            error_setg_errno(errp, e, "Could not open '%s'", path);
            return -1;
        }
        return fd;
    }
    do {
        fd = open(path, flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        error_setg_errno(errp, errno, "Could not open '%s'", path);
    }
    return fd;
}
