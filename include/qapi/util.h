/* Enum string tables shared by generated code and hand-written callers. */
#ifndef QAPI_UTIL_H
#define QAPI_UTIL_H

#include <stdbool.h>

#include "qapi/error.h"

/* Generated for every enum as <Enum>_lookup: array[value] is the wire name. */
typedef struct QEnumLookup {
    const char *const *array;
    int size;
} QEnumLookup;

/* The wire name of val, or NULL when val is out of range. */
const char *qapi_enum_lookup(const QEnumLookup *lookup, int val);

/*
 * The value whose wire name is buf. A NULL buf yields def without error;
 * an unknown name sets errp ("Parameter 'null' does not accept value ...",
 * as QEMU words it) and returns def.
 */
int qapi_enum_parse(const QEnumLookup *lookup, const char *buf, int def,
                    Error **errp);

#endif
