/* QMP's JSON dialect: splits the byte stream, parses values, writes QEMU's bytes. */
#include "monitor/qmp-json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Integers above INT64_MAX                                                */
/* ---------------------------------------------------------------------- */

/*
 * The mark is the QAPI visitors' convention (include/qapi/visit-json.h):
 * an int node holding the 64 bits, sealed. Unsealed negative values stand
 * for themselves.
 */
bool qmp_json_node_is_big_uint(JsonNode *node)
{
    return node && JSON_NODE_HOLDS_VALUE(node) &&
           json_node_get_value_type(node) == G_TYPE_INT64 &&
           json_node_is_immutable(node) && json_node_get_int(node) < 0;
}

JsonNode *qmp_json_new_uint(uint64_t v)
{
    JsonNode *n = json_node_new(JSON_NODE_VALUE);

    json_node_set_int(n, (gint64)v);
    if (v > INT64_MAX) {
        json_node_seal(n);
    }
    return n;
}

void qmp_json_free(JsonNode *node)
{
    if (node) {
        json_node_unref(node);
    }
}

/* ---------------------------------------------------------------------- */
/* Parser                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct Parser {
    const char *p;
    const char *end;
    int depth;
    Error **errp;
    bool failed;
} Parser;

static void parse_error(Parser *ps, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void parse_error(Parser *ps, const char *fmt, ...)
{
    if (ps->failed) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    ps->failed = true;
    error_setg(ps->errp, "JSON parse error, %s", msg);
}

static void skip_ws(Parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

static bool is_word_char(char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '+' || c == '.' || c == '_';
}

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = g_ascii_xdigit_value(s[i]);
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static char *parse_string(Parser *ps)
{
    char quote = *ps->p++;
    GString *s = g_string_new(NULL);

    while (ps->p < ps->end && *ps->p != quote) {
        unsigned char c = *ps->p;
        if (c < 0x20) {
            parse_error(ps, "stray '%c'", quote);
            goto fail;
        }
        if (c != '\\') {
            /* Validate one UTF-8 sequence so output never carries garbage. */
            const char *next = g_utf8_find_next_char(ps->p, ps->end);
            if (!next) {
                next = ps->end;
            }
            if (!g_utf8_validate(ps->p, next - ps->p, NULL)) {
                parse_error(ps, "invalid UTF-8 sequence in string");
                goto fail;
            }
            g_string_append_len(s, ps->p, next - ps->p);
            ps->p = next;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            break;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': g_string_append_c(s, '"'); break;
        case '\'': g_string_append_c(s, '\''); break;
        case '\\': g_string_append_c(s, '\\'); break;
        case '/': g_string_append_c(s, '/'); break;
        case 'b': g_string_append_c(s, '\b'); break;
        case 'f': g_string_append_c(s, '\f'); break;
        case 'n': g_string_append_c(s, '\n'); break;
        case 'r': g_string_append_c(s, '\r'); break;
        case 't': g_string_append_c(s, '\t'); break;
        case 'u': {
            int cp = ps->end - ps->p >= 4 ? hex4(ps->p) : -1;
            if (cp < 0) {
                parse_error(ps, "invalid escape sequence in string");
                goto fail;
            }
            const char *esc = ps->p - 2;
            ps->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->p >= 6 &&
                ps->p[0] == '\\' && ps->p[1] == 'u') {
                int lo = hex4(ps->p + 2);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    ps->p += 6;
                }
            }
            if (cp == 0) {
                parse_error(ps, "\\u0000 is not supported");
                goto fail;
            }
            if (cp >= 0xd800 && cp < 0xe000) {
                parse_error(ps, "%.6s is not a valid Unicode character", esc);
                goto fail;
            }
            g_string_append_unichar(s, cp);
            break;
        }
        default:
            parse_error(ps, "invalid escape sequence in string");
            goto fail;
        }
    }
    if (ps->p >= ps->end) {
        parse_error(ps, "missing closing quote");
        goto fail;
    }
    ps->p++;
    return g_string_free(s, FALSE);

fail:
    g_string_free(s, TRUE);
    return NULL;
}

/* JSON numbers only: no hex, no leading zeros, no "1." (QEMU's lexer agrees). */
static bool number_syntax_ok(const char *w, size_t n, bool *is_int)
{
    size_t i = 0;

    *is_int = true;
    if (i < n && w[i] == '-') {
        i++;
    }
    if (i >= n || !g_ascii_isdigit(w[i])) {
        return false;
    }
    if (w[i] == '0') {
        i++;
    } else {
        while (i < n && g_ascii_isdigit(w[i])) {
            i++;
        }
    }
    if (i < n && w[i] == '.') {
        *is_int = false;
        i++;
        if (i >= n || !g_ascii_isdigit(w[i])) {
            return false;
        }
        while (i < n && g_ascii_isdigit(w[i])) {
            i++;
        }
    }
    if (i < n && (w[i] == 'e' || w[i] == 'E')) {
        *is_int = false;
        i++;
        if (i < n && (w[i] == '+' || w[i] == '-')) {
            i++;
        }
        if (i >= n || !g_ascii_isdigit(w[i])) {
            return false;
        }
        while (i < n && g_ascii_isdigit(w[i])) {
            i++;
        }
    }
    return i == n;
}

static JsonNode *parse_word(Parser *ps)
{
    const char *start = ps->p;
    while (ps->p < ps->end && is_word_char(*ps->p)) {
        ps->p++;
    }
    size_t n = ps->p - start;
    if (n == 0) {
        parse_error(ps, "stray '%c'", *start);
        return NULL;
    }
    g_autofree char *w = g_strndup(start, n);
    JsonNode *node;

    if (!strcmp(w, "true") || !strcmp(w, "false")) {
        node = json_node_new(JSON_NODE_VALUE);
        json_node_set_boolean(node, w[0] == 't');
        return node;
    }
    if (!strcmp(w, "null")) {
        return json_node_new(JSON_NODE_NULL);
    }
    if (g_ascii_isalpha(w[0])) {
        parse_error(ps, "invalid keyword '%s'", w);
        return NULL;
    }
    bool is_int;
    if (!number_syntax_ok(w, n, &is_int)) {
        parse_error(ps, "stray '%s'", w);
        return NULL;
    }
    if (is_int) {
        /* As QEMU: int64 if it fits, else uint64, else a double. */
        errno = 0;
        if (w[0] == '-') {
            gint64 v = g_ascii_strtoll(w, NULL, 10);
            if (errno == 0) {
                node = json_node_new(JSON_NODE_VALUE);
                json_node_set_int(node, v);
                return node;
            }
        } else {
            guint64 v = g_ascii_strtoull(w, NULL, 10);
            if (errno == 0) {
                return qmp_json_new_uint(v);
            }
        }
    }
    node = json_node_new(JSON_NODE_VALUE);
    json_node_set_double(node, g_ascii_strtod(w, NULL));
    return node;
}

static JsonNode *parse_value(Parser *ps);

static JsonNode *parse_object(Parser *ps)
{
    JsonObject *obj = json_object_new();
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);
    json_node_take_object(node, obj);

    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return node;
    }
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end) {
            parse_error(ps, "premature end of input");
            goto fail;
        }
        if (*ps->p != '"' && *ps->p != '\'') {
            if (*ps->p == '}') {
                parse_error(ps, "expecting value");
            } else {
                parse_error(ps, "key is not a string in object");
            }
            goto fail;
        }
        g_autofree char *key = parse_string(ps);
        if (!key) {
            goto fail;
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            parse_error(ps, "missing : in object pair");
            goto fail;
        }
        ps->p++;
        JsonNode *val = parse_value(ps);
        if (!val) {
            goto fail;
        }
        if (json_object_has_member(obj, key)) {
            qmp_json_free(val);
            parse_error(ps, "duplicate key");
            goto fail;
        }
        json_object_set_member(obj, key, val);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return node;
        }
        parse_error(ps, "expected separator in dict");
        goto fail;
    }
fail:
    qmp_json_free(node);
    return NULL;
}

static JsonNode *parse_array(Parser *ps)
{
    JsonArray *arr = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, arr);

    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return node;
    }
    for (;;) {
        JsonNode *val = parse_value(ps);
        if (!val) {
            goto fail;
        }
        json_array_add_element(arr, val);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return node;
        }
        parse_error(ps, "expected separator in list");
        goto fail;
    }
fail:
    qmp_json_free(node);
    return NULL;
}

static JsonNode *parse_value(Parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        parse_error(ps, "expecting value");
        return NULL;
    }
    switch (*ps->p) {
    case '{':
    case '[': {
        if (++ps->depth > QMP_JSON_MAX_NESTING) {
            parse_error(ps, "nesting depth limit exceeded");
            return NULL;
        }
        JsonNode *n = *ps->p == '{' ? parse_object(ps) : parse_array(ps);
        ps->depth--;
        return n;
    }
    case '"':
    case '\'': {
        g_autofree char *s = parse_string(ps);
        if (!s) {
            return NULL;
        }
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        json_node_set_string(n, s);
        return n;
    }
    case '}':
    case ']':
    case ',':
    case ':':
        parse_error(ps, "expecting value");
        return NULL;
    default:
        return parse_word(ps);
    }
}

JsonNode *qmp_json_parse(const char *text, size_t len, Error **errp)
{
    Parser ps = { .p = text, .end = text + len, .errp = errp };
    JsonNode *node = parse_value(&ps);

    if (node) {
        skip_ws(&ps);
        if (ps.p < ps.end) {
            parse_error(&ps, "expecting end of input");
            qmp_json_free(node);
            return NULL;
        }
    }
    return node;
}

/* ---------------------------------------------------------------------- */
/* Stream splitter                                                          */
/* ---------------------------------------------------------------------- */

/*
 * Tracks just enough structure (strings, escapes, nesting) to know where a
 * top-level value ends; the parser then sees one complete value. Scalars at
 * top level end at the first delimiter, as QEMU's lexer ends them.
 */
typedef enum SplitState {
    SPLIT_IDLE,
    SPLIT_CONTAINER,
    SPLIT_WORD,
    SPLIT_TOP_STRING,
    SPLIT_SKIP,          /* discarding the rest of an over-limit value */
    SPLIT_SKIP_WORD,     /* the same for an over-limit top-level scalar */
} SplitState;

struct QmpJsonStreamer {
    QmpJsonEmit *emit;
    void *opaque;
    GString *buf;
    SplitState state;
    int depth;
    char quote;           /* inside a string: its quote char, else 0 */
    bool escape;
    size_t tokens;
};

QmpJsonStreamer *qmp_json_streamer_new(QmpJsonEmit *emit, void *opaque)
{
    QmpJsonStreamer *js = g_new0(QmpJsonStreamer, 1);
    js->emit = emit;
    js->opaque = opaque;
    js->buf = g_string_new(NULL);
    return js;
}

void qmp_json_streamer_free(QmpJsonStreamer *js)
{
    if (js) {
        g_string_free(js->buf, TRUE);
        g_free(js);
    }
}

size_t qmp_json_streamer_buffered(const QmpJsonStreamer *js)
{
    return js->buf->allocated_len;
}

static void split_reset(QmpJsonStreamer *js, SplitState state)
{
    g_string_truncate(js->buf, 0);
    if (js->buf->allocated_len > 65536) {
        /* Give back what a huge value made us allocate. */
        g_string_free(js->buf, TRUE);
        js->buf = g_string_new(NULL);
    }
    js->state = state;
    js->depth = 0;
    js->quote = 0;
    js->escape = false;
    js->tokens = 0;
}

static void split_complete(QmpJsonStreamer *js)
{
    Error *err = NULL;
    JsonNode *node = qmp_json_parse(js->buf->str, js->buf->len, &err);

    split_reset(js, SPLIT_IDLE);
    js->emit(js->opaque, node, err);
}

static void split_limit(QmpJsonStreamer *js, const char *what)
{
    Error *err = NULL;
    bool in_container = js->state == SPLIT_CONTAINER;
    int depth = js->depth;
    char quote = js->quote;

    bool in_word = js->state == SPLIT_WORD;

    error_setg(&err, "JSON %s limit exceeded", what);
    /*
     * Skip the rest of the value rather than reading it as new input, which
     * would answer one huge request with a flood of errors (QEMU does).
     */
    split_reset(js, in_word ? SPLIT_SKIP_WORD : SPLIT_SKIP);
    js->depth = in_container ? depth : 0;
    js->quote = quote;
    js->emit(js->opaque, NULL, err);
}

/* Returns true when c was consumed as part of a string body. */
static bool split_in_string(QmpJsonStreamer *js, char c)
{
    if (!js->quote) {
        return false;
    }
    if (js->escape) {
        js->escape = false;
    } else if (c == '\\') {
        js->escape = true;
    } else if (c == js->quote) {
        js->quote = 0;
    }
    return true;
}

static bool is_delim(char c)
{
    return !is_word_char(c);
}

static void split_char(QmpJsonStreamer *js, char c)
{
    switch (js->state) {
    case SPLIT_SKIP_WORD:
        if (is_delim(c)) {
            split_reset(js, SPLIT_IDLE);
            split_char(js, c);
        }
        return;

    case SPLIT_SKIP:
        if (split_in_string(js, c)) {
            if (!js->quote && js->depth == 0) {
                split_reset(js, SPLIT_IDLE);    /* end of a top-level string */
            }
            return;
        }
        if (c == '"' || c == '\'') {
            js->quote = c;
        } else if (c == '{' || c == '[') {
            js->depth++;
        } else if ((c == '}' || c == ']') && --js->depth == 0) {
            split_reset(js, SPLIT_IDLE);
        }
        return;

    case SPLIT_IDLE:
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            return;
        }
        g_string_append_c(js->buf, c);
        if (c == '{' || c == '[') {
            js->state = SPLIT_CONTAINER;
            js->depth = 1;
        } else if (c == '"' || c == '\'') {
            js->state = SPLIT_TOP_STRING;
            js->quote = c;
        } else if (is_word_char(c)) {
            js->state = SPLIT_WORD;
        } else {
            /* A stray '}' or '@': the parser words the error. */
            split_complete(js);
        }
        return;

    case SPLIT_WORD:
        if (is_delim(c)) {
            split_complete(js);
            split_char(js, c);
            return;
        }
        g_string_append_c(js->buf, c);
        break;

    case SPLIT_TOP_STRING:
        g_string_append_c(js->buf, c);
        split_in_string(js, c);
        if (!js->quote) {
            split_complete(js);
            return;
        }
        break;

    case SPLIT_CONTAINER:
        g_string_append_c(js->buf, c);
        if (split_in_string(js, c)) {
            break;
        }
        if (c == '"' || c == '\'') {
            js->quote = c;
            js->tokens++;
        } else if (c == '{' || c == '[') {
            js->tokens++;
            if (++js->depth > QMP_JSON_MAX_NESTING) {
                split_limit(js, "nesting depth");
                return;
            }
        } else if (c == '}' || c == ']') {
            if (--js->depth == 0) {
                split_complete(js);
                return;
            }
        } else if (c == ',' || c == ':') {
            js->tokens += 1;
        }
        if (js->tokens > QMP_JSON_MAX_TOKENS) {
            split_limit(js, "token count");
            return;
        }
        break;
    }
    if (js->buf->len > QMP_JSON_MAX_VALUE_SIZE) {
        split_limit(js, "token size");
    }
}

void qmp_json_streamer_feed(QmpJsonStreamer *js, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        split_char(js, buf[i]);
    }
}

/* ---------------------------------------------------------------------- */
/* Writer                                                                   */
/* ---------------------------------------------------------------------- */

/*
 * QEMU's QDict: 512 buckets chosen by the tdb hash of the key; iteration
 * walks the buckets in order and each bucket from its newest entry.
 * Clients diff QMP traffic, so we reproduce the order exactly.
 */
static unsigned qdict_bucket(const char *key)
{
    size_t len = strlen(key);
    uint32_t v = 0x238F13AFu * (uint32_t)len;

    for (size_t i = 0; i < len; i++) {
        v += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    }
    return (1103515243u * v + 12345u) % 512;
}

typedef struct KeyOrder {
    const char *key;
    unsigned bucket;
    unsigned seq;
} KeyOrder;

static int key_order_cmp(const void *a, const void *b)
{
    const KeyOrder *x = a, *y = b;
    if (x->bucket != y->bucket) {
        return x->bucket < y->bucket ? -1 : 1;
    }
    return x->seq > y->seq ? -1 : x->seq < y->seq;
}

GList *qmp_json_object_keys_qemu_order(JsonObject *obj)
{
    GList *members = json_object_get_members(obj);
    guint n = g_list_length(members);
    KeyOrder *ko = g_new(KeyOrder, n ? n : 1);
    unsigned i = 0;

    for (GList *l = members; l; l = l->next, i++) {
        ko[i] = (KeyOrder){ l->data, qdict_bucket(l->data), i };
    }
    g_list_free(members);
    qsort(ko, n, sizeof(*ko), key_order_cmp);
    GList *out = NULL;
    for (i = n; i > 0; i--) {
        out = g_list_prepend(out, (gpointer)ko[i - 1].key);
    }
    g_free(ko);
    return out;
}

static void append_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const char *p = s; *p;) {
        gunichar cp = g_utf8_get_char_validated(p, -1);
        if (cp == (gunichar)-1 || cp == (gunichar)-2) {
            /* Invalid UTF-8 from a handler: QEMU substitutes U+FFFD. */
            g_string_append(out, "\\uFFFD");
            p++;
            continue;
        }
        p = g_utf8_next_char(p);
        switch (cp) {
        case '"': g_string_append(out, "\\\""); break;
        case '\\': g_string_append(out, "\\\\"); break;
        case '\b': g_string_append(out, "\\b"); break;
        case '\f': g_string_append(out, "\\f"); break;
        case '\n': g_string_append(out, "\\n"); break;
        case '\r': g_string_append(out, "\\r"); break;
        case '\t': g_string_append(out, "\\t"); break;
        default:
            if (cp >= 0x20 && cp < 0x7f) {
                g_string_append_c(out, (char)cp);
            } else if (cp > 0xffff) {
                cp -= 0x10000;
                g_string_append_printf(out, "\\u%04X\\u%04X",
                                       0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                g_string_append_printf(out, "\\u%04X", cp);
            }
        }
    }
    g_string_append_c(out, '"');
}

void qmp_json_append(GString *out, JsonNode *node)
{
    if (!node) {
        g_string_append(out, "null");
        return;
    }
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_NULL:
        g_string_append(out, "null");
        break;
    case JSON_NODE_OBJECT: {
        JsonObject *o = json_node_get_object(node);
        GList *keys = qmp_json_object_keys_qemu_order(o);
        g_string_append_c(out, '{');
        for (GList *l = keys; l; l = l->next) {
            append_string(out, l->data);
            g_string_append(out, ": ");
            qmp_json_append(out, json_object_get_member(o, l->data));
            if (l->next) {
                g_string_append(out, ", ");
            }
        }
        g_string_append_c(out, '}');
        g_list_free(keys);
        break;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *a = json_node_get_array(node);
        guint n = json_array_get_length(a);
        g_string_append_c(out, '[');
        for (guint i = 0; i < n; i++) {
            qmp_json_append(out, json_array_get_element(a, i));
            if (i + 1 < n) {
                g_string_append(out, ", ");
            }
        }
        g_string_append_c(out, ']');
        break;
    }
    case JSON_NODE_VALUE: {
        GType t = json_node_get_value_type(node);
        if (t == G_TYPE_STRING) {
            append_string(out, json_node_get_string(node));
        } else if (t == G_TYPE_BOOLEAN) {
            g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
        } else if (t == G_TYPE_DOUBLE) {
            g_string_append_printf(out, "%.17g", json_node_get_double(node));
        } else if (qmp_json_node_is_big_uint(node)) {
            g_string_append_printf(out, "%" G_GUINT64_FORMAT,
                                   (guint64)json_node_get_int(node));
        } else {
            g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
        }
        break;
    }
    }
}

char *qmp_json_to_string(JsonNode *node)
{
    GString *s = g_string_new(NULL);
    qmp_json_append(s, node);
    return g_string_free(s, FALSE);
}
