/* Command lookup over the generated table, and query-qmp-schema's marshaller. */
#include <string.h>

#include "qapi-commands.h"
#include "qapi/visit-json.h"

const QmpCommand *qmp_command_lookup(const char *name)
{
    size_t i;

    if (!name) {
        return NULL;
    }
    for (i = 0; i < qmp_commands_count; i++) {
        if (strcmp(qmp_commands[i].name, name) == 0) {
            return &qmp_commands[i];
        }
    }
    return NULL;
}

/* 'gen': false in control.json: the answer is data, not a C handler's result. */
void qmp_marshal_query_qmp_schema(JsonObject *args, JsonNode **ret, Error **errp)
{
    *ret = NULL;
    if (args && !qapi_check_unexpected(args, NULL,
                                       (const char *const[]){ NULL }, errp)) {
        return;
    }
    *ret = qmp_introspection_data();
}
