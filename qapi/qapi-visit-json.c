/* JSON visitor runtime: scalar conversions with QEMU 7.2's argument error texts. */
#include <math.h>

#include "qapi/visit-json.h"

char *qapi_path_str(const QapiPath *path)
{
    GPtrArray *parts = g_ptr_array_new();
    GString *out = g_string_new(NULL);
    const QapiPath *p;
    guint i;

    for (p = path; p; p = p->up) {
        g_ptr_array_add(parts, (gpointer)p);
    }
    for (i = parts->len; i-- > 0;) {
        p = g_ptr_array_index(parts, i);
        if (p->name) {
            if (out->len) {
                g_string_append_c(out, '.');
            }
            g_string_append(out, p->name);
        } else {
            g_string_append_printf(out, "[%zu]", p->index);
        }
    }
    g_ptr_array_free(parts, TRUE);
    return g_string_free(out, FALSE);
}

static void type_error(const QapiPath *path, const char *expected, Error **errp)
{
    g_autofree char *name = qapi_path_str(path);

    error_setg(errp, "Invalid parameter type for '%s', expected: %s",
               name, expected);
}

static GType value_type(JsonNode *node)
{
    if (JSON_NODE_HOLDS_VALUE(node)) {
        return json_node_get_value_type(node);
    }
    return G_TYPE_INVALID;
}

bool qapi_json_is_big_uint(JsonNode *node)
{
    return value_type(node) == G_TYPE_INT64 && json_node_is_immutable(node) &&
           json_node_get_int(node) < 0;
}

JsonNode *qapi_json_new_big_uint(uint64_t val)
{
    JsonNode *node = json_node_new(JSON_NODE_VALUE);

    json_node_set_int(node, (gint64)val);
    if (val > INT64_MAX) {
        json_node_seal(node);
    }
    return node;
}

bool qapi_in_str(JsonNode *node, const QapiPath *path, char **out, Error **errp)
{
    if (value_type(node) != G_TYPE_STRING) {
        type_error(path, "string", errp);
        return false;
    }
    *out = g_strdup(json_node_get_string(node));
    return true;
}

bool qapi_in_int(JsonNode *node, const QapiPath *path, int64_t *out, Error **errp)
{
    /* QEMU rejects floats (even 1.0) and integers beyond int64 alike. */
    if (value_type(node) != G_TYPE_INT64 || qapi_json_is_big_uint(node)) {
        type_error(path, "integer", errp);
        return false;
    }
    *out = json_node_get_int(node);
    return true;
}

bool qapi_in_int64(JsonNode *node, const QapiPath *path, int64_t *out,
                   Error **errp)
{
    return qapi_in_int(node, path, out, errp);
}

bool qapi_in_uint64(JsonNode *node, const QapiPath *path, uint64_t *out,
                    Error **errp)
{
    if (value_type(node) != G_TYPE_INT64) {
        g_autofree char *name = qapi_path_str(path);

        /* Not "Invalid parameter type": QEMU 7.2 words this one differently. */
        error_setg(errp, "Parameter '%s' expects uint64", name);
        return false;
    }
    *out = (uint64_t)json_node_get_int(node);
    return true;
}

bool qapi_in_bool(JsonNode *node, const QapiPath *path, bool *out, Error **errp)
{
    if (value_type(node) != G_TYPE_BOOLEAN) {
        type_error(path, "boolean", errp);
        return false;
    }
    *out = json_node_get_boolean(node);
    return true;
}

bool qapi_in_number(JsonNode *node, const QapiPath *path, double *out,
                    Error **errp)
{
    GType t = value_type(node);

    if (t == G_TYPE_DOUBLE) {
        *out = json_node_get_double(node);
    } else if (qapi_json_is_big_uint(node)) {
        *out = (double)(uint64_t)json_node_get_int(node);
    } else if (t == G_TYPE_INT64) {
        *out = (double)json_node_get_int(node);
    } else {
        type_error(path, "number", errp);
        return false;
    }
    return true;
}

bool qapi_in_any(JsonNode *node, const QapiPath *path, JsonNode **out,
                 Error **errp)
{
    *out = json_node_copy(node);
    return true;
}

bool qapi_in_enum(JsonNode *node, const QapiPath *path,
                  const QEnumLookup *lookup, int *out, Error **errp)
{
    const char *s;
    int i;

    if (value_type(node) != G_TYPE_STRING) {
        type_error(path, "string", errp);
        return false;
    }
    s = json_node_get_string(node);
    for (i = 0; i < lookup->size; i++) {
        if (g_str_equal(s, lookup->array[i])) {
            *out = i;
            return true;
        }
    }
    /*
     * QEMU names only the member here, not its path, and says 'null' for
     * list elements: "Parameter 'capability' does not accept value 'x'".
     */
    error_setg(errp, "Parameter '%s' does not accept value '%s'",
               path && path->name ? path->name : "null", s);
    return false;
}

JsonObject *qapi_in_object(JsonNode *node, const QapiPath *path, Error **errp)
{
    if (!JSON_NODE_HOLDS_OBJECT(node)) {
        type_error(path, "object", errp);
        return NULL;
    }
    return json_node_get_object(node);
}

JsonArray *qapi_in_array(JsonNode *node, const QapiPath *path, Error **errp)
{
    if (!JSON_NODE_HOLDS_ARRAY(node)) {
        type_error(path, "array", errp);
        return NULL;
    }
    return json_node_get_array(node);
}

void qapi_error_missing(const QapiPath *path, const char *name, Error **errp)
{
    g_autofree char *full = qapi_path_str(&(QapiPath){ .up = path, .name = name });

    error_setg(errp, "Parameter '%s' is missing", full);
}

bool qapi_check_unexpected(JsonObject *obj, const QapiPath *path,
                           const char *const *known, Error **errp)
{
    JsonObjectIter iter;
    const char *name;
    JsonNode *node;

    json_object_iter_init(&iter, obj);
    while (json_object_iter_next(&iter, &name, &node)) {
        const char *const *k;

        for (k = known; *k && strcmp(*k, name) != 0; k++) {
            continue;
        }
        if (!*k) {
            g_autofree char *full =
                qapi_path_str(&(QapiPath){ .up = path, .name = name });

            error_setg(errp, "Parameter '%s' is unexpected", full);
            return false;
        }
    }
    return true;
}

JsonNode *qapi_out_str(const char *val)
{
    return json_node_init_string(json_node_alloc(), val ? val : "");
}

JsonNode *qapi_out_int(int64_t val)
{
    return json_node_init_int(json_node_alloc(), val);
}

JsonNode *qapi_out_int64(int64_t val)
{
    return qapi_out_int(val);
}

JsonNode *qapi_out_uint64(uint64_t val)
{
    return qapi_json_new_big_uint(val);
}

JsonNode *qapi_out_bool(bool val)
{
    return json_node_init_boolean(json_node_alloc(), val);
}

JsonNode *qapi_out_number(double val)
{
    return json_node_init_double(json_node_alloc(), val);
}

JsonNode *qapi_out_any(JsonNode *val)
{
    return val ? json_node_copy(val) : json_node_init_null(json_node_alloc());
}

JsonNode *qapi_out_enum(const QEnumLookup *lookup, int val)
{
    const char *s = qapi_enum_lookup(lookup, val);

    /* An out-of-range value is a handler bug; say so rather than crash. */
    return qapi_out_str(s ? s : "(invalid)");
}

JsonNode *qapi_out_object(JsonObject *obj)
{
    JsonNode *node = json_node_init_object(json_node_alloc(), obj);

    json_object_unref(obj);
    return node;
}

JsonNode *qapi_out_array(JsonArray *arr)
{
    JsonNode *node = json_node_init_array(json_node_alloc(), arr);

    json_array_unref(arr);
    return node;
}
