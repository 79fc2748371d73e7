/* HMP: line input, QEMU's args_type parser, dispatch, help, human-monitor-command. */
#include "monitor-internal.h"
#include "monitor/hmp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config-host.h"
#include "qapi-commands.h"
#include "sysemu/cpus.h"
#include "sysemu/runstate.h"

#define HMP_PROMPT "(qemu) "

/* ---------------------------------------------------------------------- */
/* Argument helpers for handlers                                           */
/* ---------------------------------------------------------------------- */

bool hmp_arg_has(JsonObject *args, const char *name)
{
    return args && json_object_has_member(args, name);
}

bool hmp_arg_bool(JsonObject *args, const char *name)
{
    return hmp_arg_has(args, name) && json_object_get_boolean_member(args, name);
}

const char *hmp_arg_str(JsonObject *args, const char *name)
{
    return hmp_arg_has(args, name) ? json_object_get_string_member(args, name) : NULL;
}

int64_t hmp_arg_int(JsonObject *args, const char *name, int64_t def)
{
    return hmp_arg_has(args, name) ? json_object_get_int_member(args, name) : def;
}

void hmp_handle_error(Monitor *mon, Error *err)
{
    if (err) {
        monitor_printf(mon, "Error: %s\n", error_get_pretty(err));
        error_free(err);
    }
}

/* ---------------------------------------------------------------------- */
/* Table lookup and help                                                    */
/* ---------------------------------------------------------------------- */

static bool name_matches(const char *names, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == wl && !strncmp(p, word, len)) {
            return true;
        }
        if (!bar) {
            break;
        }
        p = bar + 1;
    }
    return false;
}

static const HMPCommand *table_find(const HMPCommand *table, const char *word)
{
    for (const HMPCommand *c = table; c->name; c++) {
        if (name_matches(c->name, word)) {
            return c;
        }
    }
    return NULL;
}

static void help_line(Monitor *mon, const char *prefix, const HMPCommand *c)
{
    monitor_printf(mon, "%s%s %s -- %s\n", prefix, c->name, c->params, c->help);
}

static void help_table(Monitor *mon, const char *prefix, const HMPCommand *table)
{
    for (const HMPCommand *c = table; c->name; c++) {
        help_line(mon, prefix, c);
    }
}

void hmp_info_help(Monitor *mon, JsonObject *args)
{
    help_table(mon, "info ", hmp_info_cmds);
}

void hmp_help(Monitor *mon, JsonObject *args)
{
    const char *what = hmp_arg_str(args, "name");
    g_auto(GStrv) words = g_strsplit_set(what ? what : "", " \t", -1);
    const HMPCommand *table = hmp_cmds;
    GString *prefix = g_string_new(NULL);
    const HMPCommand *found = NULL;

    for (char **w = words; *w; w++) {
        if (!**w) {
            continue;
        }
        found = table ? table_find(table, *w) : NULL;
        if (!found) {
            g_string_append(prefix, *w);
            monitor_printf(mon, "unknown command: '%s'\n", prefix->str);
            g_string_free(prefix, TRUE);
            return;
        }
        if (found->sub_table && w[1]) {
            g_string_append_printf(prefix, "%s ", *w);
            table = found->sub_table;
            found = NULL;
            continue;
        }
        break;
    }
    if (!found) {
        help_table(mon, prefix->str, table);
    } else if (found->sub_table) {
        help_table(mon, "info ", found->sub_table);
    } else {
        help_line(mon, prefix->str, found);
    }
    g_string_free(prefix, TRUE);
}

/* ---------------------------------------------------------------------- */
/* The args_type language                                                   */
/* ---------------------------------------------------------------------- */

typedef struct LineParser {
    Monitor *mon;
    const char *p;
    bool failed;
} LineParser;

static void skip_spaces(LineParser *lp)
{
    while (*lp->p == ' ' || *lp->p == '\t') {
        lp->p++;
    }
}

static void lp_error(LineParser *lp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void lp_error(LineParser *lp, const char *fmt, ...)
{
    if (lp->failed) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    monitor_printf(lp->mon, "%s\n", msg);
    lp->failed = true;
}

/* A word, or a "quoted string" with C escapes, as QEMU's get_str reads it. */
static char *get_str(LineParser *lp)
{
    GString *s = g_string_new(NULL);

    skip_spaces(lp);
    if (*lp->p == '"') {
        lp->p++;
        while (*lp->p && *lp->p != '"') {
            char c = *lp->p++;
            if (c == '\\') {
                c = *lp->p++;
                switch (c) {
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case '\\': case '\'': case '"': break;
                default:
                    lp_error(lp, "unsupported escape code: '\\%c'", c ? c : ' ');
                    g_string_free(s, TRUE);
                    return NULL;
                }
            }
            g_string_append_c(s, c);
        }
        if (*lp->p != '"') {
            lp_error(lp, "unterminated string");
            g_string_free(s, TRUE);
            return NULL;
        }
        lp->p++;
    } else {
        while (*lp->p && *lp->p != ' ' && *lp->p != '\t') {
            g_string_append_c(s, *lp->p++);
        }
    }
    return g_string_free(s, FALSE);
}

static bool expr_sum(LineParser *lp, uint64_t *v);

static bool expr_unary(LineParser *lp, uint64_t *v)
{
    skip_spaces(lp);
    switch (*lp->p) {
    case '+':
        lp->p++;
        return expr_unary(lp, v);
    case '-':
        lp->p++;
        if (!expr_unary(lp, v)) {
            return false;
        }
        *v = -*v;
        return true;
    case '~':
        lp->p++;
        if (!expr_unary(lp, v)) {
            return false;
        }
        *v = ~*v;
        return true;
    case '(':
        lp->p++;
        if (!expr_sum(lp, v)) {
            return false;
        }
        skip_spaces(lp);
        if (*lp->p != ')') {
            lp_error(lp, "')' expected");
            return false;
        }
        lp->p++;
        return true;
    case '\0':
        lp_error(lp, "Unexpected end of expression");
        return false;
    default:
        if (!g_ascii_isdigit(*lp->p)) {
            lp_error(lp, "invalid char '%c' in expression", *lp->p);
            return false;
        }
        char *end;
        errno = 0;
        *v = strtoull(lp->p, &end, 0);
        if (errno == ERANGE) {
            lp_error(lp, "number too large");
            return false;
        }
        lp->p = end;
        return true;
    }
}

static bool expr_logic(LineParser *lp, uint64_t *v)
{
    if (!expr_unary(lp, v)) {
        return false;
    }
    for (;;) {
        skip_spaces(lp);
        char op = *lp->p;
        if (op != '&' && op != '|' && op != '^') {
            return true;
        }
        lp->p++;
        uint64_t r;
        if (!expr_unary(lp, &r)) {
            return false;
        }
        *v = op == '&' ? (*v & r) : op == '|' ? (*v | r) : (*v ^ r);
    }
}

static bool expr_prod(LineParser *lp, uint64_t *v)
{
    if (!expr_logic(lp, v)) {
        return false;
    }
    for (;;) {
        skip_spaces(lp);
        char op = *lp->p;
        if (op != '*' && op != '/' && op != '%') {
            return true;
        }
        lp->p++;
        uint64_t r;
        if (!expr_logic(lp, &r)) {
            return false;
        }
        if (op != '*' && r == 0) {
            lp_error(lp, "division by zero");
            return false;
        }
        *v = op == '*' ? *v * r : op == '/' ? (uint64_t)((int64_t)*v / (int64_t)r)
                                           : (uint64_t)((int64_t)*v % (int64_t)r);
    }
}

static bool expr_sum(LineParser *lp, uint64_t *v)
{
    if (!expr_prod(lp, v)) {
        return false;
    }
    for (;;) {
        skip_spaces(lp);
        char op = *lp->p;
        if (op != '+' && op != '-') {
            return true;
        }
        lp->p++;
        uint64_t r;
        if (!expr_prod(lp, &r)) {
            return false;
        }
        *v = op == '+' ? *v + r : *v - r;
    }
}

/* Is "-c" declared as a flag anywhere in the rest of args_type? */
static bool flag_declared_later(const char *rest, char c)
{
    g_auto(GStrv) specs = g_strsplit(rest, ",", -1);
    for (char **s = specs; *s; s++) {
        const char *colon = strchr(*s, ':');
        if (colon && colon[1] == '-' && colon[2] == c) {
            return true;
        }
    }
    return false;
}

/* Parses the rest of the line against cmd->args_type into a new object. */
static JsonObject *parse_args(LineParser *lp, const HMPCommand *cmd)
{
    JsonObject *args = json_object_new();
    g_auto(GStrv) specs = g_strsplit(cmd->args_type, ",", -1);

    for (char **s = specs; *s && !lp->failed; s++) {
        if (!**s) {
            continue;
        }
        const char *colon = strchr(*s, ':');
        g_assert(colon);
        g_autofree char *name = g_strndup(*s, colon - *s);
        const char *type = colon + 1;
        bool optional = type[0] && type[1] == '?';

        if (type[0] == '-') {
            char c = type[1];
            skip_spaces(lp);
            bool set = false;
            if (lp->p[0] == '-' && lp->p[1]) {
                if (lp->p[1] == c) {
                    set = true;
                    lp->p += 2;
                } else {
                    g_autofree char *rest = g_strjoinv(",", s + 1);
                    if (!flag_declared_later(rest, lp->p[1])) {
                        lp_error(lp, "%s: unsupported option -%c", cmd->name, lp->p[1]);
                        break;
                    }
                }
            }
            if (type[2] == 'i') {
                /*
                 * "-Xi": an option that takes one integer word (not an
                 * expression: "-D 1 /tmp/x" would divide); absent, no member.
                 */
                g_autofree char *word = NULL;
                char *end;
                gint64 v;

                if (!set) {
                    continue;
                }
                skip_spaces(lp);
                word = *lp->p ? get_str(lp) : NULL;
                if (!word) {
                    lp_error(lp, "%s: integer expected", cmd->name);
                    break;
                }
                errno = 0;
                v = g_ascii_strtoll(word, &end, 0);
                if (!*word || *end || errno) {
                    lp_error(lp, "%s: integer expected", cmd->name);
                    break;
                }
                json_object_set_int_member(args, name, v);
                continue;
            }
            json_object_set_boolean_member(args, name, set);
            continue;
        }
        skip_spaces(lp);
        if (!*lp->p) {
            if (optional) {
                continue;
            }
            switch (type[0]) {
            case 'F':
                lp_error(lp, "%s: filename expected", cmd->name);
                break;
            case 'i':
            case 'l':
                lp_error(lp, "%s: integer expected", cmd->name);
                break;
            default:
                lp_error(lp, "%s: string expected", cmd->name);
            }
            break;
        }
        switch (type[0]) {
        case 'F':
        case 's': {
            g_autofree char *str = get_str(lp);
            if (str) {
                json_object_set_string_member(args, name, str);
            }
            break;
        }
        case 'S':
            /* The rest of the line, for help's "info status". */
            json_object_set_string_member(args, name, lp->p);
            lp->p += strlen(lp->p);
            break;
        case 'i':
        case 'l': {
            uint64_t v;
            if (expr_sum(lp, &v)) {
                json_object_set_member(args, name, qmp_json_new_uint(v));
            }
            break;
        }
        default:
            g_assert_not_reached();
        }
    }
    if (!lp->failed) {
        skip_spaces(lp);
        if (*lp->p) {
            lp_error(lp, "%s: extraneous characters at the end of line", cmd->name);
        }
    }
    if (lp->failed) {
        json_object_unref(args);
        return NULL;
    }
    return args;
}

static char *next_word(const char **p)
{
    while (**p == ' ' || **p == '\t') {
        (*p)++;
    }
    const char *start = *p;
    while (**p && **p != ' ' && **p != '\t') {
        (*p)++;
    }
    return g_strndup(start, *p - start);
}

void monitor_hmp_execute(Monitor *mon, const char *line)
{
    const char *p = line;
    const HMPCommand *table = hmp_cmds;
    const HMPCommand *cmd = NULL;
    GString *typed = g_string_new(NULL);

    for (;;) {
        g_autofree char *word = next_word(&p);
        if (!*word) {
            if (!cmd) {
                goto out;          /* empty line */
            }
            break;                 /* "info" alone */
        }
        if (typed->len) {
            g_string_append_c(typed, ' ');
        }
        g_string_append(typed, word);
        cmd = table_find(table, word);
        if (!cmd) {
            monitor_printf(mon, "unknown command: '%s'\n", typed->str);
            goto out;
        }
        if (!cmd->sub_table) {
            break;
        }
        const char *peek = p;
        g_autofree char *sub = next_word(&peek);
        if (!*sub) {
            break;
        }
        table = cmd->sub_table;
    }

    LineParser lp = { .mon = mon, .p = p };
    JsonObject *args = cmd->sub_table ? json_object_new() : parse_args(&lp, cmd);
    if (!args) {
        monitor_printf(mon, "Try \"help %s\" for more information\n", typed->str);
        goto out;
    }
    Monitor *prev = monitor_cur();
    monitor_set_cur(mon);
    cmd->handler(mon, args);
    monitor_set_cur(prev);
    json_object_unref(args);
out:
    g_string_free(typed, TRUE);
}

/* ---------------------------------------------------------------------- */
/* HMP over a socket or stdio                                               */
/* ---------------------------------------------------------------------- */

void monitor_hmp_greet(Monitor *mon)
{
    monitor_printf(mon, "QEMU 7.2.0 monitor (guestdump " GUESTDUMP_VERSION
                   ") - type 'help' for more information\n");
    monitor_printf(mon, HMP_PROMPT);
}

void monitor_hmp_feed(Monitor *mon, const char *buf, size_t len)
{
    for (size_t i = 0; i < len && !mon->dead; i++) {
        char c = buf[i];
        if (c == '\r') {
            continue;
        }
        if (c != '\n') {
            if (mon->line->len >= MONITOR_MAX_HMP_LINE) {
                mon->line_overflow = true;
            } else {
                g_string_append_c(mon->line, c);
            }
            continue;
        }
        if (mon->line_overflow) {
            monitor_printf(mon, "command line too long (limit %d bytes)\n",
                           MONITOR_MAX_HMP_LINE);
        } else {
            monitor_hmp_execute(mon, mon->line->str);
            monitor_drop_pending_fds(mon);
        }
        g_string_truncate(mon->line, 0);
        mon->line_overflow = false;
        /* After quit QEMU suspends the monitor: no new prompt. */
        if (!mon->dead && !runstate_shutdown_requested()) {
            monitor_printf(mon, HMP_PROMPT);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* human-monitor-command                                                    */
/* ---------------------------------------------------------------------- */

char *qmp_human_monitor_command(const char *command_line, bool has_cpu_index,
                                int64_t cpu_index, Error **errp)
{
    if (has_cpu_index && (cpu_index < 0 || cpu_index >= machine_cpu_count())) {
        error_setg(errp, "Parameter 'cpu-index' expects a CPU number");
        return NULL;
    }
    /*
     * A monitor of its own, as in QEMU: output is captured, and fds sent
     * with the QMP command are not visible to HMP's getfd.
     */
    Monitor hmp = {
        .qmp = false,
        .in_fd = -1,
        .out_fd = -1,
        .capture = g_string_new(NULL),
    };
    g_queue_init(&hmp.pending_fds);
    monitor_hmp_execute(&hmp, command_line);
    monitor_fds_cleanup(&hmp);
    return g_string_free(hmp.capture, FALSE);
}
