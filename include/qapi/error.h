/* Error reporting: one error object per failure, QEMU's Error **errp discipline. */
#ifndef QAPI_ERROR_H
#define QAPI_ERROR_H

#include <glib.h>
#include <stdbool.h>

/*
 * The QMP error classes. Only GenericError and CommandNotFound are used by
 * guestdump; the others exist because QMP clients know their names.
 */
typedef enum ErrorClass {
    ERROR_CLASS_GENERIC_ERROR,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_ACTIVE,
    ERROR_CLASS_DEVICE_NOT_FOUND,
    ERROR_CLASS_KVM_MISSING_CAP,
} ErrorClass;

typedef struct Error Error;

/*
 * Functions that can fail take Error **errp as their last parameter and
 * return bool (or a pointer, NULL on failure). errp may be NULL when the
 * caller does not care. Setting an error into an errp that already holds
 * one is a programming error and aborts.
 */
void error_setg(Error **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* As error_setg, with ": strerror(os_errno)" appended. */
void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
void error_set(Error **errp, ErrorClass cls, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* Moves local into *dst (or frees it when dst is NULL / already set). */
void error_propagate(Error **dst, Error *local);
/* Prefixes the message of *errp (no-op when errp or *errp is NULL). */
void error_prepend(Error **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

const char *error_get_pretty(const Error *err);
ErrorClass error_get_class(const Error *err);
/* "GenericError", "CommandNotFound", ... as QMP spells them. */
const char *error_class_name(ErrorClass cls);
Error *error_copy(const Error *err);
void error_free(Error *err);
void error_free_or_abort(Error **errp);

/* Prints "guestdump: <msg>" to stderr; used where no monitor is around. */
void error_report_err(Error *err);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Error, error_free)

#endif
