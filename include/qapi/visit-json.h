/* Runtime of the generated JSON visitors: member paths, scalars, QEMU's error texts. */
#ifndef QAPI_VISIT_JSON_H
#define QAPI_VISIT_JSON_H

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"
#include "qapi/util.h"

/*
 * Where a value sits inside a request, so that messages name it as QEMU
 * does: 'protocol', 'registers[0].name'. Paths live on the C stack of the
 * visitors; NULL is the top-level arguments object.
 */
typedef struct QapiPath QapiPath;
struct QapiPath {
    const QapiPath *up;
    const char *name;       /* member name; NULL for a list element */
    size_t index;           /* the element's index when name is NULL */
};

/* "registers[0].name"; never NULL. */
char *qapi_path_str(const QapiPath *path);

/*
 * Input: convert node (never NULL) into *out or set errp with QEMU 7.2's
 * text for that type. *out is untouched on failure.
 */
bool qapi_in_str(JsonNode *node, const QapiPath *path, char **out, Error **errp);
bool qapi_in_int(JsonNode *node, const QapiPath *path, int64_t *out, Error **errp);
bool qapi_in_int64(JsonNode *node, const QapiPath *path, int64_t *out,
                   Error **errp);
/* Negative integers wrap, as in QEMU (which accepts them for compatibility). */
bool qapi_in_uint64(JsonNode *node, const QapiPath *path, uint64_t *out,
                    Error **errp);
bool qapi_in_bool(JsonNode *node, const QapiPath *path, bool *out, Error **errp);
bool qapi_in_number(JsonNode *node, const QapiPath *path, double *out,
                    Error **errp);
/* Any JSON value; *out is a new reference. */
bool qapi_in_any(JsonNode *node, const QapiPath *path, JsonNode **out,
                 Error **errp);
bool qapi_in_enum(JsonNode *node, const QapiPath *path,
                  const QEnumLookup *lookup, int *out, Error **errp);
/* The object or array inside node (borrowed), NULL with "expected: object/array". */
JsonObject *qapi_in_object(JsonNode *node, const QapiPath *path, Error **errp);
JsonArray *qapi_in_array(JsonNode *node, const QapiPath *path, Error **errp);

/* "Parameter '<path>.<name>' is missing". */
void qapi_error_missing(const QapiPath *path, const char *name, Error **errp);
/* Fails with "Parameter '...' is unexpected" for a member not in known[]. */
bool qapi_check_unexpected(JsonObject *obj, const QapiPath *path,
                           const char *const *known, Error **errp);

/* Output: new nodes, owned by the caller. */
JsonNode *qapi_out_str(const char *val);
JsonNode *qapi_out_int(int64_t val);
JsonNode *qapi_out_int64(int64_t val);
JsonNode *qapi_out_uint64(uint64_t val);
JsonNode *qapi_out_bool(bool val);
JsonNode *qapi_out_number(double val);
JsonNode *qapi_out_any(JsonNode *val);
JsonNode *qapi_out_enum(const QEnumLookup *lookup, int val);
/* Takes ownership of obj / arr. */
JsonNode *qapi_out_object(JsonObject *obj);
JsonNode *qapi_out_array(JsonArray *arr);

/*
 * Integers beyond INT64_MAX. json-glib keeps every JSON integer in a
 * gint64: 18446744073709551615 arrives as -1, 2^64 and beyond saturate,
 * and values below INT64_MIN wrap. QEMU keeps 2^63..2^64-1 as unsigned and
 * turns integers beyond both ranges into doubles. The monitor's parser
 * (monitor/qmp-json.c) therefore hands us integers beyond both ranges as
 * doubles, and a value in 2^63..2^64-1 as an int64 node holding the same
 * 64 bits, sealed (json_node_seal) as the mark that it is unsigned. The
 * visitors read that mark: int64 members reject such a value as QEMU does,
 * uint64 members get it exactly. Unsealed nodes built by hand work too
 * (negative values then stand for themselves and wrap for uint64).
 */
bool qapi_json_is_big_uint(JsonNode *node);
/* An int node holding val, marked when above INT64_MAX (what outputs use). */
JsonNode *qapi_json_new_big_uint(uint64_t val);

#endif
