/* QMP's JSON dialect: stream splitting, parsing to JsonNode, QEMU-identical output. */
#ifndef MONITOR_QMP_JSON_H
#define MONITOR_QMP_JSON_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "qapi/error.h"

/*
 * Limits on one JSON value, as QEMU's json-streamer has them: a peer
 * cannot make us buffer or recurse without bound.
 */
#define QMP_JSON_MAX_VALUE_SIZE  (64u << 20)
#define QMP_JSON_MAX_TOKENS      (2u << 20)
#define QMP_JSON_MAX_NESTING     1024

/*
 * Called once per complete top-level value (err NULL, value owned by the
 * callee: free it with qmp_json_free) or once per malformed one (value
 * NULL, err owned by the callee).
 */
typedef void QmpJsonEmit(void *opaque, JsonNode *value, Error *err);

typedef struct QmpJsonStreamer QmpJsonStreamer;

QmpJsonStreamer *qmp_json_streamer_new(QmpJsonEmit *emit, void *opaque);
/* Bytes as they come from the wire; values may span calls. */
void qmp_json_streamer_feed(QmpJsonStreamer *js, const char *buf, size_t len);
void qmp_json_streamer_free(QmpJsonStreamer *js);
/* Bytes of memory the unfinished value holds (for the monitors' budget). */
size_t qmp_json_streamer_buffered(const QmpJsonStreamer *js);

/*
 * Parses exactly one JSON value (QEMU's dialect: single-quoted strings are
 * accepted). Errors are worded "JSON parse error, ..." as QEMU words them.
 */
JsonNode *qmp_json_parse(const char *text, size_t len, Error **errp);

/*
 * Integers in (INT64_MAX, UINT64_MAX] cannot be held by a JsonNode, which
 * stores gint64 only. As the QAPI visitors expect (qapi/visit-json.h), they
 * become int nodes holding the same 64 bits, sealed as the mark; the writer
 * prints them unsigned.
 */
bool qmp_json_node_is_big_uint(JsonNode *node);
/* A new int node holding v, marked when above INT64_MAX. */
JsonNode *qmp_json_new_uint(uint64_t v);
void qmp_json_free(JsonNode *node);

/*
 * Serialises as QEMU's qobject_to_json does: ", " and ": " separators,
 * members in QEMU's QDict iteration order (hash bucket, then newest first),
 * non-ASCII escaped as \uXXXX, doubles as %.17g. Byte-compatible with what
 * QEMU 7.2 sends for the same values.
 */
void qmp_json_append(GString *out, JsonNode *node);
char *qmp_json_to_string(JsonNode *node);

/* Member names of obj in QEMU's QDict iteration order (free the list only). */
GList *qmp_json_object_keys_qemu_order(JsonObject *obj);

#endif
