/* Error objects: creation, propagation and the QMP class names. */
#include "qapi/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Error {
    ErrorClass cls;
    char *msg;
};

static void error_setv(Error **errp, ErrorClass cls, int os_errno,
                       const char *fmt, va_list ap)
{
    if (!errp) {
        return;
    }
    /* Overwriting an error would lose the first cause; that is a bug. */
    g_assert(*errp == NULL);

    Error *err = g_new0(Error, 1);
    err->cls = cls;
    err->msg = g_strdup_vprintf(fmt, ap);
    if (os_errno) {
        char *full = g_strdup_printf("%s: %s", err->msg, g_strerror(os_errno));
        g_free(err->msg);
        err->msg = full;
    }
    *errp = err;
}

void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv(errp, ERROR_CLASS_GENERIC_ERROR, 0, fmt, ap);
    va_end(ap);
}

void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv(errp, ERROR_CLASS_GENERIC_ERROR, os_errno, fmt, ap);
    va_end(ap);
}

void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_setv(errp, cls, 0, fmt, ap);
    va_end(ap);
}

void error_propagate(Error **dst, Error *local)
{
    if (!local) {
        return;
    }
    if (dst && !*dst) {
        *dst = local;
    } else {
        error_free(local);
    }
}

void error_prepend(Error **errp, const char *fmt, ...)
{
    if (!errp || !*errp) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *msg = g_strconcat(prefix, (*errp)->msg, NULL);
    g_free(prefix);
    g_free((*errp)->msg);
    (*errp)->msg = msg;
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

ErrorClass error_get_class(const Error *err)
{
    return err->cls;
}

const char *error_class_name(ErrorClass cls)
{
    switch (cls) {
    case ERROR_CLASS_GENERIC_ERROR:
        return "GenericError";
    case ERROR_CLASS_COMMAND_NOT_FOUND:
        return "CommandNotFound";
    case ERROR_CLASS_DEVICE_NOT_ACTIVE:
        return "DeviceNotActive";
    case ERROR_CLASS_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
    case ERROR_CLASS_KVM_MISSING_CAP:
        return "KVMMissingCap";
    }
    return "GenericError";
}

Error *error_copy(const Error *err)
{
    Error *copy = g_new0(Error, 1);
    copy->cls = err->cls;
    copy->msg = g_strdup(err->msg);
    return copy;
}

void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        g_free(err);
    }
}

void error_free_or_abort(Error **errp)
{
    g_assert(errp && *errp);
    error_free(*errp);
    *errp = NULL;
}

void error_report_err(Error *err)
{
    fprintf(stderr, "guestdump: %s\n", error_get_pretty(err));
    error_free(err);
}
