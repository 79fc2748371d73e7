/* Unit tests of the generated JSON visitors: round trips, big integers, paths. */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "qapi-types.h"
#include "qapi-visit.h"

static JsonNode *parse(const char *text)
{
    g_autoptr(JsonParser) p = json_parser_new();
    GError *err = NULL;

    if (!json_parser_load_from_data(p, text, -1, &err)) {
        g_error("bad test JSON %s: %s", text, err->message);
    }
    return json_parser_steal_root(p);
}

static char *to_text(JsonNode *node)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();

    json_generator_set_root(gen, node);
    return json_generator_to_data(gen, NULL);
}

/* Every generated type, with and without its optional members. */
static void test_roundtrip_all_types(void)
{
    size_t i;

    g_assert_cmpuint(qapi_type_samples_count, >, 20);
    for (i = 0; i < qapi_type_samples_count; i++) {
        const QapiTypeSample *s = &qapi_type_samples[i];
        const char *texts[] = { s->full, s->minimal };

        for (size_t k = 0; k < G_N_ELEMENTS(texts); k++) {
            g_autoptr(JsonNode) in = parse(texts[k]);
            g_autoptr(JsonNode) out = NULL;
            g_autoptr(JsonNode) again = NULL;
            Error *err = NULL;

            out = s->roundtrip(in, &err);
            if (!out) {
                g_error("%s: %s rejected: %s", s->name, texts[k],
                        error_get_pretty(err));
            }
            if (!json_node_equal(in, out)) {
                g_autofree char *a = to_text(in);
                g_autofree char *b = to_text(out);

                g_error("%s: %s came back as %s", s->name, a, b);
            }
            /* The output must be valid input again. */
            again = s->roundtrip(out, &err);
            g_assert_null(err);
            g_assert_true(json_node_equal(out, again));
        }
    }
}

static void test_struct_fields(void)
{
    g_autoptr(JsonNode) in =
        parse("{\"status\": \"active\", \"completed\": 1024, \"total\": 4096}");
    g_autoptr(DumpQueryResult) r = NULL;
    g_autoptr(JsonNode) out = NULL;
    JsonObject *o;
    Error *err = NULL;

    g_assert_true(qapi_in_DumpQueryResult(in, NULL, &r, &err));
    g_assert_cmpint(r->status, ==, DUMP_STATUS_ACTIVE);
    g_assert_cmpint(r->completed, ==, 1024);
    g_assert_cmpint(r->total, ==, 4096);

    r->status = DUMP_STATUS_FAILED;
    out = qapi_out_DumpQueryResult(r);
    o = json_node_get_object(out);
    g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "failed");
    g_assert_cmpint(json_object_get_size(o), ==, 3);
}

static void test_enum_names(void)
{
    /* The C order is part of the contract (writers index tables by it). */
    static const char *const fmts[] = {
        "elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-raw-zlib",
        "kdump-raw-lzo", "kdump-raw-snappy", "win-dmp", "kdump-zstd",
        "kdump-raw-zstd",
    };
    Error *err = NULL;

    g_assert_cmpint(DUMP_GUEST_MEMORY_FORMAT__MAX, ==, G_N_ELEMENTS(fmts));
    for (int i = 0; i < DUMP_GUEST_MEMORY_FORMAT__MAX; i++) {
        g_assert_cmpstr(DumpGuestMemoryFormat_str(i), ==, fmts[i]);
        g_assert_cmpint(qapi_enum_parse(&DumpGuestMemoryFormat_lookup, fmts[i],
                                        -1, &err), ==, i);
        g_assert_null(err);
    }
    g_assert_cmpint(DUMP_GUEST_MEMORY_FORMAT_WIN_DMP, ==, 7);
    g_assert_cmpint(DUMP_GUEST_MEMORY_FORMAT_KDUMP_RAW_ZSTD, ==, 9);
    g_assert_cmpint(RUN_STATE_RUNNING, ==, 9);
    g_assert_cmpstr(RunState_str(RUN_STATE_GUEST_PANICKED), ==, "guest-panicked");
    g_assert_cmpint(QMP_CAPABILITY_OOB, ==, 0);
    g_assert_cmpstr(ShutdownCause_str(SHUTDOWN_CAUSE_HOST_QMP_QUIT), ==,
                    "host-qmp-quit");
    g_assert_null(DumpStatus_str(DUMP_STATUS__MAX));
    g_assert_null(DumpStatus_str(-1));

    g_assert_cmpint(qapi_enum_parse(&DumpStatus_lookup, "bogus", -7, &err), ==, -7);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Parameter 'null' does not accept value 'bogus'");
    error_free(err);
    g_assert_cmpint(qapi_enum_parse(&DumpStatus_lookup, NULL, 3, NULL), ==, 3);
}

/*
 * 0xffffffff81000000 is a typical x86-64 kernel address. JSON integers
 * above INT64_MAX reach us as sealed int64 nodes (include/qapi/visit-json.h).
 */
static void test_uint64_exact(void)
{
    const uint64_t kaddr = 0xffffffff81000000ull;
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(X86RegisterValue) reg = NULL;
    g_autoptr(JsonNode) out = NULL;
    JsonNode *v;
    Error *err = NULL;

    json_object_set_string_member(obj, "name", "rip");
    json_object_set_member(obj, "value", qapi_json_new_big_uint(kaddr));
    json_node_set_object(node, obj);
    g_assert_true(qapi_in_X86RegisterValue(node, NULL, &reg, &err));
    g_assert_cmphex(reg->value, ==, kaddr);

    out = qapi_out_X86RegisterValue(reg);
    v = json_object_get_member(json_node_get_object(out), "value");
    g_assert_true(qapi_json_is_big_uint(v));
    g_assert_cmphex((uint64_t)json_node_get_int(v), ==, kaddr);

    /* Small values are plain, unsealed integers. */
    reg->value = 5;
    {
        g_autoptr(JsonNode) small = qapi_out_X86RegisterValue(reg);

        v = json_object_get_member(json_node_get_object(small), "value");
        g_assert_false(qapi_json_is_big_uint(v));
        g_assert_cmpint(json_node_get_int(v), ==, 5);
    }

    /* A negative value wraps, as QEMU accepts it "for compatibility". */
    {
        g_autoptr(JsonNode) neg = parse("{\"name\": \"rax\", \"value\": -1}");
        g_autoptr(X86RegisterValue) r2 = NULL;

        g_assert_true(qapi_in_X86RegisterValue(neg, NULL, &r2, &err));
        g_assert_cmphex(r2->value, ==, UINT64_MAX);
    }
}

static void check_error(const char *type_json, const char *msg)
{
    g_autoptr(JsonNode) in = parse(type_json);
    g_autoptr(X86RegisterValueList) list = NULL;
    Error *err = NULL;
    QapiPath top = { .name = "registers" };

    g_assert_false(qapi_in_X86RegisterValueList(in, &top, &list, &err));
    g_assert_nonnull(err);
    g_assert_null(list);
    g_assert_cmpstr(error_get_pretty(err), ==, msg);
    g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_GENERIC_ERROR);
    error_free(err);
}

/* Messages name the value as QEMU does: list indexes and member paths. */
static void test_nested_paths(void)
{
    check_error("[{\"value\": 1}]", "Parameter 'registers[0].name' is missing");
    check_error("[{\"name\": \"a\", \"value\": 1}, {\"name\": 7, \"value\": 1}]",
                "Invalid parameter type for 'registers[1].name', expected: string");
    check_error("[{\"name\": \"a\", \"value\": 1, \"x\": 0}]",
                "Parameter 'registers[0].x' is unexpected");
    check_error("[{\"name\": \"a\", \"value\": \"1\"}]",
                "Parameter 'registers[0].value' expects uint64");
    check_error("[{\"name\": \"a\", \"value\": 1.5}]",
                "Parameter 'registers[0].value' expects uint64");
    check_error("[5]", "Invalid parameter type for 'registers[0]', expected: object");
    check_error("{}", "Invalid parameter type for 'registers', expected: array");
}

static void test_int_range(void)
{
    g_autoptr(JsonNode) big = qapi_json_new_big_uint(1ull << 63);
    g_autoptr(JsonNode) dbl = parse("18446744073709551616.0");
    g_autoptr(JsonNode) one = parse("1.0");
    QapiPath p = { .name = "begin" };
    int64_t v = 99;
    double d;
    Error *err = NULL;

    /* QEMU treats 2^63 as unsigned and refuses it for an int member. */
    g_assert_false(qapi_in_int(big, &p, &v, &err));
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "Invalid parameter type for 'begin', expected: integer");
    error_free(err);
    err = NULL;
    g_assert_false(qapi_in_int(dbl, &p, &v, &err));
    error_free(err);
    err = NULL;
    g_assert_false(qapi_in_int(one, &p, &v, &err));
    error_free(err);
    err = NULL;
    g_assert_cmpint(v, ==, 99);

    /* number takes any of them; the unsigned one keeps its sign. */
    g_assert_true(qapi_in_number(big, &p, &d, &err));
    g_assert_cmpfloat(d, ==, 9223372036854775808.0);
    g_assert_true(qapi_in_number(one, &p, &d, &err));
    g_assert_cmpfloat(d, ==, 1.0);
}

static void test_optional_members(void)
{
    g_autoptr(JsonNode) in = parse("{\"fdset-id\": 3, \"fds\": [{\"fd\": 7}]}");
    g_autoptr(FdsetInfo) info = NULL;
    g_autoptr(JsonNode) out = NULL;
    JsonObject *fd0;
    Error *err = NULL;

    g_assert_true(qapi_in_FdsetInfo(in, NULL, &info, &err));
    g_assert_cmpint(info->fdset_id, ==, 3);
    g_assert_nonnull(info->fds);
    g_assert_null(info->fds->next);
    g_assert_cmpint(info->fds->value->fd, ==, 7);
    g_assert_null(info->fds->value->opaque);      /* absent pointer: NULL */

    /* Absent stays absent on output, present strings appear. */
    out = qapi_out_FdsetInfo(info);
    fd0 = json_array_get_object_element(
        json_object_get_array_member(json_node_get_object(out), "fds"), 0);
    g_assert_false(json_object_has_member(fd0, "opaque"));

    info->fds->value->opaque = g_strdup("note");
    {
        g_autoptr(JsonNode) out2 = qapi_out_FdsetInfo(info);

        fd0 = json_array_get_object_element(
            json_object_get_array_member(json_node_get_object(out2), "fds"), 0);
        g_assert_cmpstr(json_object_get_string_member(fd0, "opaque"), ==, "note");
    }

    /* An optional scalar carries has_x. */
    {
        q_obj_remove_fd_arg a = { .fdset_id = 1 };
        JsonObject *o = json_object_new();

        qapi_out_q_obj_remove_fd_arg_members(&a, o);
        g_assert_false(json_object_has_member(o, "fd"));
        a.has_fd = true;
        a.fd = 0;
        qapi_out_q_obj_remove_fd_arg_members(&a, o);
        g_assert_cmpint(json_object_get_int_member(o, "fd"), ==, 0);
        json_object_unref(o);
    }
}

/* An empty list is a NULL pointer both ways. */
static void test_empty_list(void)
{
    g_autoptr(JsonNode) in = parse("{\"formats\": []}");
    g_autoptr(DumpGuestMemoryCapability) cap = NULL;
    g_autoptr(JsonNode) out = NULL;
    Error *err = NULL;

    g_assert_true(qapi_in_DumpGuestMemoryCapability(in, NULL, &cap, &err));
    g_assert_null(cap->formats);
    out = qapi_out_DumpGuestMemoryCapability(cap);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
        json_node_get_object(out), "formats")), ==, 0);
}

/* Replaces a random node of the tree (depth-first index) with something else. */
static JsonNode *random_value(GRand *r)
{
    switch (g_rand_int_range(r, 0, 9)) {
    case 0:
        return json_node_init_null(json_node_alloc());
    case 1:
        return json_node_init_string(json_node_alloc(), "bogus");
    case 2:
        return json_node_init_int(json_node_alloc(), g_rand_int(r) - G_MAXINT32);
    case 3:
        return qapi_json_new_big_uint(UINT64_MAX - g_rand_int(r));
    case 4:
        return json_node_init_double(json_node_alloc(), 2.5);
    case 5:
        return json_node_init_boolean(json_node_alloc(), TRUE);
    case 6: {
        JsonArray *a = json_array_new();

        json_array_add_int_element(a, 1);
        return qapi_out_array(a);
    }
    default: {
        JsonObject *o = json_object_new();

        json_object_set_int_member(o, "unknown-member", 1);
        return qapi_out_object(o);
    }
    }
}

static bool mutate(JsonNode *node, GRand *r, int *countdown)
{
    if (--*countdown < 0) {
        return false;
    }
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *o = json_node_get_object(node);
        g_autoptr(GList) names = json_object_get_members(o);

        for (GList *l = names; l; l = l->next) {
            JsonNode *m = json_object_get_member(o, l->data);

            if (*countdown == 0) {
                switch (g_rand_int_range(r, 0, 3)) {
                case 0:
                    json_object_remove_member(o, l->data);
                    break;
                case 1:
                    json_object_set_member(o, "zz-extra", random_value(r));
                    break;
                default:
                    json_object_set_member(o, l->data, random_value(r));
                }
                return true;
            }
            if (mutate(m, r, countdown)) {
                return true;
            }
        }
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);

        for (guint i = 0; i < json_array_get_length(a); i++) {
            if (*countdown == 0) {
                json_array_remove_element(a, i);
                json_array_add_element(a, random_value(r));
                return true;
            }
            if (mutate(json_array_get_element(a, i), r, countdown)) {
                return true;
            }
        }
    }
    return false;
}

/*
 * Hostile input: malformed variants of every sample must either pass and
 * round-trip, or fail with one of QEMU's messages; never crash or leak
 * (run under ASan / valgrind to see the latter).
 */
static void test_mutations(void)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(20221214);
    size_t failures = 0, passes = 0;

    for (size_t i = 0; i < qapi_type_samples_count; i++) {
        const QapiTypeSample *s = &qapi_type_samples[i];

        for (int round = 0; round < 60; round++) {
            g_autoptr(JsonNode) in = parse(s->full);
            g_autoptr(JsonNode) out = NULL;
            Error *err = NULL;
            int countdown = g_rand_int_range(r, 0, 12);

            if (round % 10 == 0) {
                json_node_unref(in);
                in = random_value(r);
            } else {
                mutate(in, r, &countdown);
            }
            out = s->roundtrip(in, &err);
            if (out) {
                g_autoptr(JsonNode) again = s->roundtrip(out, &err);

                g_assert_null(err);
                g_assert_true(json_node_equal(out, again));
                passes++;
                continue;
            }
            g_assert_nonnull(err);
            g_assert_true(g_str_has_prefix(error_get_pretty(err), "Parameter '") ||
                          g_str_has_prefix(error_get_pretty(err),
                                           "Invalid parameter type for '"));
            error_free(err);
            failures++;
        }
    }
    g_assert_cmpuint(failures, >, 100);
    g_assert_cmpuint(passes, >, 10);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qapi/visit/roundtrip-all-types", test_roundtrip_all_types);
    g_test_add_func("/qapi/visit/struct-fields", test_struct_fields);
    g_test_add_func("/qapi/visit/enum-names", test_enum_names);
    g_test_add_func("/qapi/visit/uint64-exact", test_uint64_exact);
    g_test_add_func("/qapi/visit/nested-paths", test_nested_paths);
    g_test_add_func("/qapi/visit/int-range", test_int_range);
    g_test_add_func("/qapi/visit/optional-members", test_optional_members);
    g_test_add_func("/qapi/visit/empty-list", test_empty_list);
    g_test_add_func("/qapi/visit/mutations", test_mutations);
    return g_test_run();
}
