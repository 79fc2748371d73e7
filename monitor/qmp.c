/* QMP server: greeting, negotiation, request checks, dispatch, responses, events. */
#include "monitor-internal.h"

#include <string.h>

#include "config-host.h"
#include "qapi/qmp-dispatch.h"

/* The interface we speak is QEMU 7.2's; clients gate features on this. */
#define QMP_QEMU_MAJOR 7
#define QMP_QEMU_MINOR 2
#define QMP_QEMU_MICRO 0

static JsonNode *version_triple(void)
{
    JsonObject *o = json_object_new();
    json_object_set_int_member(o, "major", QMP_QEMU_MAJOR);
    json_object_set_int_member(o, "minor", QMP_QEMU_MINOR);
    json_object_set_int_member(o, "micro", QMP_QEMU_MICRO);
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, o);
    return n;
}

static void send_node(Monitor *mon, JsonNode *msg)
{
    GString *s = g_string_new(NULL);
    qmp_json_append(s, msg);
    g_string_append(s, "\r\n");
    monitor_send(mon, s->str, s->len);
    g_string_free(s, TRUE);
}

void monitor_qmp_greet(Monitor *mon)
{
    JsonObject *version = json_object_new();
    json_object_set_member(version, "qemu", version_triple());
    json_object_set_string_member(version, "package", "guestdump " GUESTDUMP_VERSION);

    JsonArray *caps = json_array_new();
    json_array_add_string_element(caps, "oob");

    JsonObject *qmp = json_object_new();
    json_object_set_object_member(qmp, "version", version);
    json_object_set_array_member(qmp, "capabilities", caps);

    JsonObject *top = json_object_new();
    json_object_set_object_member(top, "QMP", qmp);
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, top);
    send_node(mon, n);
    json_node_unref(n);
}

static void send_response(Monitor *mon, JsonNode *ret, Error *err, JsonNode *id)
{
    JsonObject *rsp = json_object_new();

    if (err) {
        JsonObject *e = json_object_new();
        json_object_set_string_member(e, "class",
                                      error_class_name(error_get_class(err)));
        json_object_set_string_member(e, "desc", error_get_pretty(err));
        json_object_set_object_member(rsp, "error", e);
    } else {
        if (ret) {
            json_object_set_member(rsp, "return", json_node_ref(ret));
        } else {
            json_object_set_object_member(rsp, "return", json_object_new());
        }
    }
    if (id) {
        json_object_set_member(rsp, "id", json_node_ref(id));
    }
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, rsp);
    send_node(mon, n);
    json_node_unref(n);
}

/*
 * The request's shape, checked member by member in QEMU's QDict order so
 * that a request with several faults gets the error QEMU would give.
 */
static bool check_request(Monitor *mon, JsonObject *req, const char **command,
                          bool *oob, Error **errp)
{
    GList *keys = qmp_json_object_keys_qemu_order(req);
    bool ok = true;

    *command = NULL;
    *oob = false;
    for (GList *l = keys; l && ok; l = l->next) {
        const char *key = l->data;
        JsonNode *val = json_object_get_member(req, key);
        bool is_str = JSON_NODE_HOLDS_VALUE(val) &&
                      json_node_get_value_type(val) == G_TYPE_STRING;

        if (!strcmp(key, "execute") || (!strcmp(key, "exec-oob") && mon->oob_enabled)) {
            if (!is_str) {
                error_setg(errp, "QMP input member '%s' must be a string", key);
                ok = false;
            } else {
                *command = json_node_get_string(val);
                *oob = key[4] == '-';
            }
        } else if (!strcmp(key, "arguments")) {
            if (!JSON_NODE_HOLDS_OBJECT(val)) {
                error_setg(errp, "QMP input member 'arguments' must be an object");
                ok = false;
            }
        } else if (strcmp(key, "id") != 0) {
            error_setg(errp, "QMP input member '%s' is unexpected", key);
            ok = false;
        }
    }
    g_list_free(keys);
    if (!ok) {
        return false;
    }
    if (json_object_has_member(req, "execute") &&
        json_object_has_member(req, "exec-oob")) {
        error_setg(errp, "QMP input member 'execute' clashes with 'exec-oob'");
        return false;
    }
    if (!*command) {
        error_setg(errp, "QMP input lacks member 'execute'");
        return false;
    }
    return true;
}

static void dispatch(Monitor *mon, JsonObject *req, JsonNode *id)
{
    const char *command;
    bool oob;
    Error *err = NULL;
    JsonNode *ret = NULL;

    if (!check_request(mon, req, &command, &oob, &err)) {
        goto out;
    }
    const QmpCommand *cmd = qmp_command_lookup(command);
    /* Before negotiation only qmp_capabilities exists, as QEMU's table has it. */
    if (!mon->negotiated && strcmp(command, "qmp_capabilities") != 0) {
        cmd = NULL;
    }
    if (!cmd) {
        if (!mon->negotiated) {
            error_set(&err, ERROR_CLASS_COMMAND_NOT_FOUND,
                      "Expecting capabilities negotiation with 'qmp_capabilities'");
        } else {
            error_set(&err, ERROR_CLASS_COMMAND_NOT_FOUND,
                      "The command %s has not been found", command);
        }
        goto out;
    }
    if (oob) {
        /* No command of ours may overtake others (QEMU's allow-oob). */
        error_setg(&err, "The command %s does not support OOB", command);
        goto out;
    }
    JsonObject *args = json_object_has_member(req, "arguments")
        ? json_object_get_object_member(req, "arguments") : NULL;

    Monitor *prev = monitor_cur();
    monitor_set_cur(mon);
    cmd->fn(args, &ret, &err);
    monitor_set_cur(prev);

out:
    monitor_drop_pending_fds(mon);
    send_response(mon, ret, err, id);
    if (ret) {
        json_node_unref(ret);
    }
    error_free(err);
}

void monitor_qmp_handle(void *opaque, JsonNode *req, Error *err)
{
    Monitor *mon = opaque;

    if (mon->dead) {
        error_free(err);
        qmp_json_free(req);
        return;
    }
    if (err) {
        send_response(mon, NULL, err, NULL);
        error_free(err);
        return;
    }
    if (!JSON_NODE_HOLDS_OBJECT(req)) {
        Error *e = NULL;
        error_setg(&e, "QMP input must be a JSON object");
        send_response(mon, NULL, e, NULL);
        error_free(e);
    } else {
        JsonObject *obj = json_node_get_object(req);
        JsonNode *id = json_object_get_member(obj, "id");
        dispatch(mon, obj, id);
    }
    qmp_json_free(req);
}

/* ---------------------------------------------------------------------- */
/* Negotiation (the handler lives with the monitor: it is per connection)   */
/* ---------------------------------------------------------------------- */

#include "qapi-commands.h"

void qmp_qmp_capabilities(QMPCapabilityList *enable, Error **errp)
{
    Monitor *mon = monitor_cur();

    if (!mon || !mon->qmp) {
        error_setg(errp, "qmp_capabilities is only meaningful on a QMP monitor");
        return;
    }
    if (mon->negotiated) {
        error_set(errp, ERROR_CLASS_COMMAND_NOT_FOUND,
                  "Capabilities negotiation is already complete, command ignored");
        return;
    }
    bool oob = false;
    for (QMPCapabilityList *l = enable; l; l = l->next) {
        if (l->value == QMP_CAPABILITY_OOB) {
            oob = true;
        }
    }
    mon->oob_enabled = oob;
    mon->negotiated = true;
}

/* ---------------------------------------------------------------------- */
/* Events                                                                   */
/* ---------------------------------------------------------------------- */

static gboolean deliver_event(gpointer opaque)
{
    char *line = opaque;
    size_t len = strlen(line);
    GList *clients = monitor_qmp_clients();

    for (GList *l = clients; l; l = l->next) {
        monitor_send(l->data, line, len);
    }
    g_list_free(clients);
    g_free(line);
    return G_SOURCE_REMOVE;
}

void qapi_event_emit(const char *name, JsonObject *data)
{
    gint64 now = g_get_real_time();
    JsonObject *ts = json_object_new();
    json_object_set_int_member(ts, "seconds", now / G_USEC_PER_SEC);
    json_object_set_int_member(ts, "microseconds", now % G_USEC_PER_SEC);

    JsonObject *ev = json_object_new();
    json_object_set_string_member(ev, "event", name);
    if (data) {
        json_object_set_object_member(ev, "data", data);
    }
    json_object_set_object_member(ev, "timestamp", ts);
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(n, ev);

    /* Serialise here: the node tree must not cross threads. */
    GString *s = g_string_new(NULL);
    qmp_json_append(s, n);
    g_string_append(s, "\r\n");
    json_node_unref(n);

    /*
     * On the main thread this runs at once (so an event caused by a command
     * precedes its response, as in QEMU); from a dump worker it is queued
     * to the main loop.
     */
    g_main_context_invoke(NULL, deliver_event, g_string_free(s, FALSE));
}
