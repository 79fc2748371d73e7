/* QMP command dispatch: the contract between generated marshallers and the monitor. */
#ifndef QAPI_QMP_DISPATCH_H
#define QAPI_QMP_DISPATCH_H

#include <json-glib/json-glib.h>
#include <stdbool.h>

#include "qapi/error.h"

/*
 * A marshaller takes the "arguments" object of a QMP request (NULL when the
 * request had none), checks and converts it into typed C arguments (errors
 * worded as QEMU words them), calls the handler qmp_<command>() and stores
 * the JSON return value in *ret (an empty object for commands without
 * 'returns'). On failure it sets errp and leaves *ret NULL.
 */
typedef void QmpMarshalFunc(JsonObject *args, JsonNode **ret, Error **errp);

typedef struct QmpCommand {
    const char *name;
    QmpMarshalFunc *fn;
} QmpCommand;

/* Generated: every command of the schema, in schema order. */
extern const QmpCommand qmp_commands[];
extern const size_t qmp_commands_count;

/* NULL when the schema has no such command. */
const QmpCommand *qmp_command_lookup(const char *name);

/*
 * Generated: the value query-qmp-schema returns (a JSON array of SchemaInfo
 * objects, as QEMU's introspection describes them). A new node each call.
 */
JsonNode *qmp_introspection_data(void);

/*
 * Event sink, implemented by the monitor: sends
 * {"event": name, "data": data, "timestamp": {...}} to every negotiated QMP
 * client. Takes ownership of data (may be NULL: no "data" member). Safe to
 * call from any thread; delivery happens on the main loop.
 */
void qapi_event_emit(const char *name, JsonObject *data);

#endif
