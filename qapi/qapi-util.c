/* Enum name tables: value <-> wire name for every generated enum. */
#include "qapi/util.h"

const char *qapi_enum_lookup(const QEnumLookup *lookup, int val)
{
    if (val < 0 || val >= lookup->size) {
        return NULL;
    }
    return lookup->array[val];
}

int qapi_enum_parse(const QEnumLookup *lookup, const char *buf, int def,
                    Error **errp)
{
    int i;

    if (!buf) {
        return def;
    }
    for (i = 0; i < lookup->size; i++) {
        if (g_str_equal(buf, lookup->array[i])) {
            return i;
        }
    }
    error_setg(errp, "Parameter 'null' does not accept value '%s'", buf);
    return def;
}
