/* Unit tests of QMP's JSON layer: stream splitting, parse errors, output bytes. */
#include <string.h>

#include "monitor/qmp-json.h"

typedef struct Collected {
    GPtrArray *items;     /* "OK <json>" or "ERR <message>" */
} Collected;

static void collect(void *opaque, JsonNode *value, Error *err)
{
    Collected *c = opaque;
    if (err) {
        g_ptr_array_add(c->items, g_strdup_printf("ERR %s", error_get_pretty(err)));
        error_free(err);
        return;
    }
    g_autofree char *s = qmp_json_to_string(value);
    g_ptr_array_add(c->items, g_strdup_printf("OK %s", s));
    qmp_json_free(value);
}

/* Feeds text in pieces of chunk bytes (0 = all at once) and joins the results. */
static char *run_stream(const char *text, size_t chunk)
{
    Collected c = { g_ptr_array_new_with_free_func(g_free) };
    QmpJsonStreamer *js = qmp_json_streamer_new(collect, &c);
    size_t len = strlen(text);

    if (!chunk) {
        chunk = len ? len : 1;
    }
    for (size_t off = 0; off < len; off += chunk) {
        qmp_json_streamer_feed(js, text + off, MIN(chunk, len - off));
    }
    qmp_json_streamer_free(js);
    g_ptr_array_add(c.items, NULL);
    char *out = g_strjoinv("\n", (char **)c.items->pdata);
    g_ptr_array_free(c.items, TRUE);
    return out;
}

static const char stream[] =
    "{\"execute\": \"a\", \"arguments\": {\"s\": \"}{][\\\"'\"}}"
    "  [1, 2]\n"
    "{'single': 'quo\"ted}'}"
    "\"top\""
    "}"
    "{\"x\": tru}"
    "{\"n\": 18446744073709551615, \"m\": -1, \"d\": 1.5}"
    "7 ";

static const char expected[] =
    "OK {\"execute\": \"a\", \"arguments\": {\"s\": \"}{][\\\"'\"}}\n"
    "OK [1, 2]\n"
    "OK {\"single\": \"quo\\\"ted}\"}\n"
    "OK \"top\"\n"
    "ERR JSON parse error, expecting value\n"
    "ERR JSON parse error, invalid keyword 'tru'\n"
    "OK {\"d\": 1.5, \"n\": 18446744073709551615, \"m\": -1}\n"
    "OK 7";

static void test_split_any_chunking(void)
{
    /* Wherever the transport cuts the bytes, the same values come out. */
    for (size_t chunk = 0; chunk <= 17; chunk++) {
        g_autofree char *got = run_stream(stream, chunk);
        g_assert_cmpstr(got, ==, expected);
    }
}

static void test_big_uint_marked(void)
{
    Error *err = NULL;
    const char text[] = "[18446744073709551615, 9223372036854775807, -1, "
                        "18446744073709551616]";
    JsonNode *n = qmp_json_parse(text, strlen(text), &err);
    g_assert_null(err);
    JsonArray *a = json_node_get_array(n);

    JsonNode *big = json_array_get_element(a, 0);
    g_assert_true(qmp_json_node_is_big_uint(big));
    g_assert_cmpuint((uint64_t)json_node_get_int(big), ==, UINT64_MAX);
    g_assert_false(qmp_json_node_is_big_uint(json_array_get_element(a, 1)));
    /* A plain -1 stays a negative number. */
    g_assert_false(qmp_json_node_is_big_uint(json_array_get_element(a, 2)));
    /* Beyond uint64: a double, as QEMU does. */
    g_assert_cmpint(json_node_get_value_type(json_array_get_element(a, 3)), ==,
                    G_TYPE_DOUBLE);
    g_autofree char *s = qmp_json_to_string(n);
    g_assert_cmpstr(s, ==, "[18446744073709551615, 9223372036854775807, -1, "
                           "1.8446744073709552e+19]");
    qmp_json_free(n);

    JsonNode *u = qmp_json_new_uint(0xffffffff81000000ull);
    g_autofree char *us = qmp_json_to_string(u);
    g_assert_cmpstr(us, ==, "18446744071578845184");
    qmp_json_free(u);
}

static void test_output_bytes(void)
{
    /* Strings as QEMU escapes them: uppercase \u, surrogate pairs, no "\/". */
    const char text[] = "{\"s\": \"a\\u00e9\\ud83d\\ude00/\\b\\f\\n\\r\\t\\u007f\"}";
    Error *err = NULL;
    JsonNode *n = qmp_json_parse(text, strlen(text), &err);
    g_assert_null(err);
    g_autofree char *s = qmp_json_to_string(n);
    g_assert_cmpstr(s, ==, "{\"s\": \"a\\u00E9\\uD83D\\uDE00/\\b\\f\\n\\r\\t\\u007F\"}");
    qmp_json_free(n);

    /* Member order is QEMU's QDict order: reply keys and QMP's own objects. */
    const char obj[] = "{\"running\": false, \"singlestep\": false, "
                       "\"status\": \"paused\"}";
    n = qmp_json_parse(obj, strlen(obj), &err);
    g_autofree char *o = qmp_json_to_string(n);
    g_assert_cmpstr(o, ==, "{\"status\": \"paused\", \"singlestep\": false, "
                           "\"running\": false}");
    qmp_json_free(n);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *in;
        const char *msg;
    } cases[] = {
        { "{\"a\" 1}", "JSON parse error, missing : in object pair" },
        { "{\"a\": 1, \"a\": 2}", "JSON parse error, duplicate key" },
        { "\"\\u0000\"", "JSON parse error, \\u0000 is not supported" },
        { "01", "JSON parse error, stray '01'" },
        { "0x10", "JSON parse error, stray '0x10'" },
        { "\"\xff\"", "JSON parse error, invalid UTF-8 sequence in string" },
        { "[1,]", "JSON parse error, expecting value" },
        { "", "JSON parse error, expecting value" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        Error *err = NULL;
        JsonNode *n = qmp_json_parse(cases[i].in, strlen(cases[i].in), &err);
        g_assert_null(n);
        g_assert_nonnull(err);
        g_assert_cmpstr(error_get_pretty(err), ==, cases[i].msg);
        error_free(err);
    }
}

static void test_limits_resync(void)
{
    /* Too deep: one error, the rest of that value is skipped, then all is normal. */
    GString *s = g_string_new(NULL);
    for (int i = 0; i < QMP_JSON_MAX_NESTING + 10; i++) {
        g_string_append(s, "[\"]\",");
    }
    for (int i = 0; i < QMP_JSON_MAX_NESTING + 10; i++) {
        g_string_append_c(s, ']');
    }
    g_string_append(s, "{\"ok\": 1}");
    g_autofree char *got = run_stream(s->str, 4096);
    g_assert_cmpstr(got, ==, "ERR JSON nesting depth limit exceeded\nOK {\"ok\": 1}");
    g_string_free(s, TRUE);
}

static void test_huge_scalars_one_error(void)
{
    /* An over-limit top-level string or word costs one error, not thousands. */
    Collected c = { g_ptr_array_new_with_free_func(g_free) };
    QmpJsonStreamer *js = qmp_json_streamer_new(collect, &c);
    size_t chunk = 1 << 20;
    char *buf = g_malloc(chunk);

    memset(buf, 'x', chunk);
    qmp_json_streamer_feed(js, "\"", 1);
    for (size_t sent = 0; sent <= QMP_JSON_MAX_VALUE_SIZE; sent += chunk) {
        qmp_json_streamer_feed(js, buf, chunk);
    }
    qmp_json_streamer_feed(js, "\" [1]", 5);
    memset(buf, '7', chunk);
    for (size_t sent = 0; sent <= QMP_JSON_MAX_VALUE_SIZE; sent += chunk) {
        qmp_json_streamer_feed(js, buf, chunk);
    }
    qmp_json_streamer_feed(js, " {}", 3);
    qmp_json_streamer_free(js);
    g_free(buf);

    g_assert_cmpuint(c.items->len, ==, 4);
    const char *limit = "ERR JSON token size limit exceeded";
    g_assert_cmpstr(g_ptr_array_index(c.items, 0), ==, limit);
    g_assert_cmpstr(g_ptr_array_index(c.items, 1), ==, "OK [1]");
    g_assert_cmpstr(g_ptr_array_index(c.items, 2), ==, limit);
    g_assert_cmpstr(g_ptr_array_index(c.items, 3), ==, "OK {}");
    g_ptr_array_free(c.items, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-json/split-any-chunking", test_split_any_chunking);
    g_test_add_func("/qmp-json/big-uint", test_big_uint_marked);
    g_test_add_func("/qmp-json/output-bytes", test_output_bytes);
    g_test_add_func("/qmp-json/parse-errors", test_parse_errors);
    g_test_add_func("/qmp-json/limits-resync", test_limits_resync);
    g_test_add_func("/qmp-json/huge-scalars-one-error", test_huge_scalars_one_error);
    return g_test_run();
}
