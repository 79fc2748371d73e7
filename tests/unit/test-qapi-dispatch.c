/* Unit tests of the generated marshallers: argument errors, lookup, introspection. */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "qapi-commands.h"
#include "qapi-visit.h"

static JsonObject *args_of(const char *text)
{
    g_autoptr(JsonParser) p = json_parser_new();
    GError *err = NULL;

    if (!json_parser_load_from_data(p, text, -1, &err)) {
        g_error("bad test JSON %s: %s", text, err->message);
    }
    return json_object_ref(json_node_get_object(json_parser_get_root(p)));
}

/*
 * Runs a command whose arguments are rejected before its handler runs, so
 * the test needs no machine; msg is what QEMU 7.2 answers (checked against
 * qemu-system-x86_64 7.2 over QMP).
 */
static void expect_error(const char *cmd, const char *args, const char *msg)
{
    const QmpCommand *c = qmp_command_lookup(cmd);
    g_autoptr(JsonObject) obj = args ? args_of(args) : NULL;
    JsonNode *ret = (JsonNode *)0x1;
    Error *err = NULL;

    g_assert_nonnull(c);
    c->fn(obj, &ret, &err);
    if (!err) {
        g_error("%s %s: no error, expected \"%s\"", cmd, args, msg);
    }
    g_assert_null(ret);
    g_assert_cmpstr(error_get_pretty(err), ==, msg);
    g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_GENERIC_ERROR);
    error_free(err);
}

static void test_missing(void)
{
    expect_error("dump-guest-memory", "{\"paging\": false}",
                 "Parameter 'protocol' is missing");
    expect_error("dump-guest-memory", NULL, "Parameter 'paging' is missing");
    expect_error("dump-guest-memory", "{}", "Parameter 'paging' is missing");
    expect_error("x-guestdump-set-registers",
                 "{\"cpu-index\": 0, \"registers\": [{\"value\": 1}]}",
                 "Parameter 'registers[0].name' is missing");
}

static void test_unexpected(void)
{
    expect_error("dump-guest-memory",
                 "{\"paging\": false, \"protocol\": \"file:/x\", \"foo\": 1}",
                 "Parameter 'foo' is unexpected");
    /* Commands without arguments refuse any, too. */
    expect_error("query-dump", "{\"x\": 1}", "Parameter 'x' is unexpected");
    expect_error("query-qmp-schema", "{\"x\": 1}", "Parameter 'x' is unexpected");
    expect_error("x-guestdump-set-registers",
                 "{\"cpu-index\": 0, \"registers\": [{\"name\": \"rip\", "
                 "\"value\": 1, \"zz\": 1}]}",
                 "Parameter 'registers[0].zz' is unexpected");
}

static void test_wrong_type(void)
{
    static const struct {
        const char *args, *msg;
    } cases[] = {
        { "{\"paging\": \"yes\", \"protocol\": \"file:/x\"}",
          "Invalid parameter type for 'paging', expected: boolean" },
        { "{\"paging\": null, \"protocol\": \"file:/x\"}",
          "Invalid parameter type for 'paging', expected: boolean" },
        { "{\"paging\": false, \"protocol\": 5}",
          "Invalid parameter type for 'protocol', expected: string" },
        { "{\"paging\": false, \"protocol\": \"f\", \"begin\": 1.5}",
          "Invalid parameter type for 'begin', expected: integer" },
        { "{\"paging\": false, \"protocol\": \"f\", \"begin\": 1.0}",
          "Invalid parameter type for 'begin', expected: integer" },
        { "{\"paging\": false, \"protocol\": \"f\", \"begin\": \"1\"}",
          "Invalid parameter type for 'begin', expected: integer" },
        { "{\"paging\": false, \"protocol\": \"f\", \"begin\": null}",
          "Invalid parameter type for 'begin', expected: integer" },
        { "{\"paging\": false, \"protocol\": \"f\", \"begin\": [1]}",
          "Invalid parameter type for 'begin', expected: integer" },
        { "{\"paging\": false, \"protocol\": \"f\", \"length\": {}}",
          "Invalid parameter type for 'length', expected: integer" },
        /* An enum wants a string first. */
        { "{\"paging\": false, \"protocol\": \"f\", \"format\": 1}",
          "Invalid parameter type for 'format', expected: string" },
        /* A double beyond the int64 range, as the monitor's parser gives 2^64. */
        { "{\"paging\": false, \"protocol\": \"f\", \"begin\": 1.8446744073709552e19}",
          "Invalid parameter type for 'begin', expected: integer" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        expect_error("dump-guest-memory", cases[i].args, cases[i].msg);
    }
    expect_error("add-fd", "{\"fdset-id\": \"a\"}",
                 "Invalid parameter type for 'fdset-id', expected: integer");
    expect_error("human-monitor-command",
                 "{\"command-line\": \"info version\", \"cpu-index\": \"x\"}",
                 "Invalid parameter type for 'cpu-index', expected: integer");
    expect_error("qmp_capabilities", "{\"enable\": \"oob\"}",
                 "Invalid parameter type for 'enable', expected: array");
    expect_error("x-guestdump-set-registers",
                 "{\"cpu-index\": 0, \"registers\": [{\"name\": \"rip\", "
                 "\"value\": \"0x10\"}]}",
                 "Parameter 'registers[0].value' expects uint64");
    expect_error("x-guestdump-set-registers",
                 "{\"cpu-index\": 0, \"registers\": [5]}",
                 "Invalid parameter type for 'registers[0]', expected: object");
}

/* 2^63 reaches us as a sealed node (the unsigned mark) and is no int64. */
static void test_int64_overflow(void)
{
    const QmpCommand *c = qmp_command_lookup("dump-guest-memory");
    g_autoptr(JsonObject) obj =
        args_of("{\"paging\": false, \"protocol\": \"file:/x\", \"length\": 1}");
    JsonNode *ret = NULL;
    Error *err = NULL;

    json_object_set_member(obj, "begin", qapi_json_new_big_uint(1ull << 63));
    c->fn(obj, &ret, &err);
    g_assert_nonnull(err);
    g_assert_null(ret);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Invalid parameter type for 'begin', expected: integer");
    error_free(err);
}

static void test_bad_enum(void)
{
    expect_error("dump-guest-memory",
                 "{\"paging\": false, \"protocol\": \"f\", \"format\": \"bogus\"}",
                 "Parameter 'format' does not accept value 'bogus'");
    /* QEMU names a list element 'null' here, not by its path. */
    expect_error("qmp_capabilities", "{\"enable\": [\"bogus\"]}",
                 "Parameter 'null' does not accept value 'bogus'");
    expect_error("qmp_capabilities", "{\"enable\": [\"oob\", \"Oob\"]}",
                 "Parameter 'null' does not accept value 'Oob'");
}

static void test_lookup(void)
{
    static const char *const expected[] = {
        "qmp_capabilities", "query-version", "query-commands", "query-qmp-schema",
        "getfd", "closefd", "add-fd", "remove-fd", "query-fdsets",
        "human-monitor-command", "quit", "stop", "cont", "query-status",
        "dump-guest-memory", "query-dump", "query-dump-guest-memory-capability",
        "x-guestdump-set-registers", "x-guestdump-query-registers",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        const QmpCommand *c = qmp_command_lookup(expected[i]);

        g_assert_nonnull(c);
        g_assert_cmpstr(c->name, ==, expected[i]);
        g_assert_nonnull(c->fn);
    }
    for (size_t i = 0; i < qmp_commands_count; i++) {
        g_assert_true(qmp_command_lookup(qmp_commands[i].name) == &qmp_commands[i]);
    }
    g_assert_cmpuint(qmp_commands_count, >=, G_N_ELEMENTS(expected));
    g_assert_null(qmp_command_lookup("dump_guest_memory"));
    g_assert_null(qmp_command_lookup("query-dump "));
    g_assert_null(qmp_command_lookup(""));
    g_assert_null(qmp_command_lookup(NULL));
}

static GHashTable *schema_by_name(JsonNode *schema)
{
    GHashTable *h = g_hash_table_new(g_str_hash, g_str_equal);
    JsonArray *a = json_node_get_array(schema);

    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *e = json_array_get_object_element(a, i);
        const char *name = json_object_get_string_member(e, "name");

        g_assert_false(g_hash_table_contains(h, name));
        g_hash_table_insert(h, (gpointer)name, e);
    }
    return h;
}

static JsonObject *member(JsonObject *type, const char *name)
{
    JsonArray *ms = json_object_get_array_member(type, "members");

    for (guint i = 0; i < json_array_get_length(ms); i++) {
        JsonObject *m = json_array_get_object_element(ms, i);

        if (g_str_equal(json_object_get_string_member(m, "name"), name)) {
            return m;
        }
    }
    return NULL;
}

static void check_member(GHashTable *h, JsonObject *type, const char *name,
                         const char *builtin, bool optional)
{
    JsonObject *m = member(type, name);
    JsonObject *t;

    g_assert_nonnull(m);
    g_assert_cmpint(json_object_has_member(m, "default"), ==, optional);
    if (optional) {
        g_assert_true(json_object_get_null_member(m, "default"));
    }
    t = g_hash_table_lookup(h, json_object_get_string_member(m, "type"));
    g_assert_nonnull(t);
    if (builtin) {
        g_assert_cmpstr(json_object_get_string_member(t, "meta-type"), ==, "builtin");
        g_assert_cmpstr(json_object_get_string_member(t, "name"), ==, builtin);
    }
}

static void test_introspection(void)
{
    g_autoptr(JsonNode) schema = qmp_introspection_data();
    g_autoptr(GHashTable) h = NULL;
    JsonObject *cmd, *args, *fmt, *ret;
    JsonArray *values;

    g_assert_true(JSON_NODE_HOLDS_ARRAY(schema));
    h = schema_by_name(schema);

    cmd = g_hash_table_lookup(h, "dump-guest-memory");
    g_assert_nonnull(cmd);
    g_assert_cmpstr(json_object_get_string_member(cmd, "meta-type"), ==, "command");
    args = g_hash_table_lookup(h, json_object_get_string_member(cmd, "arg-type"));
    g_assert_nonnull(args);
    g_assert_cmpstr(json_object_get_string_member(args, "meta-type"), ==, "object");
    g_assert_cmpuint(json_array_get_length(
        json_object_get_array_member(args, "members")), ==, 8);
    check_member(h, args, "paging", "bool", false);
    check_member(h, args, "protocol", "str", false);
    check_member(h, args, "detach", "bool", true);
    check_member(h, args, "begin", "int", true);
    check_member(h, args, "length", "int", true);
    check_member(h, args, "format", NULL, true);
    check_member(h, args, "dump-level", "int", true);     /* guestdump's */
    /* guestdump's extension, optional so that a 7.2 client never sees it. */
    check_member(h, args, "live", "bool", true);
    fmt = g_hash_table_lookup(h, json_object_get_string_member(
        member(args, "format"), "type"));
    g_assert_cmpstr(json_object_get_string_member(fmt, "meta-type"), ==, "enum");
    values = json_object_get_array_member(fmt, "values");
    g_assert_cmpuint(json_array_get_length(values), ==, DUMP_GUEST_MEMORY_FORMAT__MAX);
    g_assert_cmpstr(json_array_get_string_element(values, 0), ==, "elf");
    g_assert_cmpstr(json_array_get_string_element(values, 7), ==, "win-dmp");

    /* No-return commands return the empty object type. */
    ret = g_hash_table_lookup(h, json_object_get_string_member(cmd, "ret-type"));
    g_assert_cmpuint(json_array_get_length(
        json_object_get_array_member(ret, "members")), ==, 0);

    cmd = g_hash_table_lookup(h, "query-dump");
    ret = g_hash_table_lookup(h, json_object_get_string_member(cmd, "ret-type"));
    check_member(h, ret, "completed", "int", false);
    check_member(h, ret, "total", "int", false);

    cmd = g_hash_table_lookup(h, "DUMP_COMPLETED");
    g_assert_cmpstr(json_object_get_string_member(cmd, "meta-type"), ==, "event");
    args = g_hash_table_lookup(h, json_object_get_string_member(cmd, "arg-type"));
    check_member(h, args, "error", "str", true);
    check_member(h, args, "result", NULL, false);

    cmd = g_hash_table_lookup(h, "query-commands");
    ret = g_hash_table_lookup(h, json_object_get_string_member(cmd, "ret-type"));
    g_assert_cmpstr(json_object_get_string_member(ret, "meta-type"), ==, "array");

    /* Every command, and nothing else, is a command in the schema. */
    {
        JsonArray *a = json_node_get_array(schema);
        size_t ncmds = 0;

        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonObject *e = json_array_get_object_element(a, i);

            if (g_str_equal(json_object_get_string_member(e, "meta-type"),
                            "command")) {
                g_assert_nonnull(qmp_command_lookup(
                    json_object_get_string_member(e, "name")));
                ncmds++;
            }
            /* Every referenced type is defined. */
            for (const char *const *k = (const char *const[]){ "arg-type",
                    "ret-type", "element-type", NULL }; *k; k++) {
                if (json_object_has_member(e, *k)) {
                    g_assert_true(g_hash_table_contains(h,
                        json_object_get_string_member(e, *k)));
                }
            }
        }
        g_assert_cmpuint(ncmds, ==, qmp_commands_count);
    }
    for (const char *const *ev = (const char *const[]){ "SHUTDOWN", "STOP",
            "RESUME", "DUMP_COMPLETED", NULL }; *ev; ev++) {
        g_assert_nonnull(g_hash_table_lookup(h, *ev));
    }
}

/* query-qmp-schema is answered by the QAPI layer itself. */
static void test_query_qmp_schema(void)
{
    const QmpCommand *c = qmp_command_lookup("query-qmp-schema");
    g_autoptr(JsonNode) expect = qmp_introspection_data();
    JsonNode *ret = NULL;
    Error *err = NULL;

    c->fn(NULL, &ret, &err);
    g_assert_null(err);
    g_assert_nonnull(ret);
    g_assert_true(json_node_equal(ret, expect));
    json_node_unref(ret);
}

/* The success path: handler result through the output visitor. */
static void test_return_value(void)
{
    const QmpCommand *c = qmp_command_lookup("query-dump");
    JsonNode *ret = NULL;
    Error *err = NULL;
    JsonObject *o;

    c->fn(NULL, &ret, &err);
    g_assert_null(err);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(ret));
    o = json_node_get_object(ret);
    g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "none");
    g_assert_cmpint(json_object_get_int_member(o, "completed"), ==, 0);
    g_assert_cmpint(json_object_get_int_member(o, "total"), ==, 0);
    g_assert_cmpuint(json_object_get_size(o), ==, 3);
    json_node_unref(ret);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qapi/dispatch/missing", test_missing);
    g_test_add_func("/qapi/dispatch/unexpected", test_unexpected);
    g_test_add_func("/qapi/dispatch/wrong-type", test_wrong_type);
    g_test_add_func("/qapi/dispatch/int64-overflow", test_int64_overflow);
    g_test_add_func("/qapi/dispatch/bad-enum", test_bad_enum);
    g_test_add_func("/qapi/dispatch/lookup", test_lookup);
    g_test_add_func("/qapi/dispatch/introspection", test_introspection);
    g_test_add_func("/qapi/dispatch/query-qmp-schema", test_query_qmp_schema);
    g_test_add_func("/qapi/dispatch/return-value", test_return_value);
    return g_test_run();
}
