/* QMP handlers of the guestdump register extensions (qapi/machine.json). */
#include <glib.h>

#include "qapi-commands.h"
#include "sysemu/cpus.h"
#include "system/machine-internal.h"

static X86CPU *cpu_by_index(int64_t cpu_index, Error **errp)
{
    X86CPU *cpu = NULL;

    if (cpu_index >= 0 && cpu_index < machine_cpu_count()) {
        cpu = machine_cpu(cpu_index);
    }
    if (!cpu) {
        error_setg(errp, "CPU index %lld is out of range: the machine has %d vCPUs",
                   (long long)cpu_index, machine_cpu_count());
    }
    return cpu;
}

void qmp_x_guestdump_set_registers(int64_t cpu_index,
                                   X86RegisterValueList *registers, Error **errp)
{
    X86CPU *cpu = cpu_by_index(cpu_index, errp);
    X86CPU scratch;

    if (!cpu) {
        return;
    }
    /* All or nothing: apply to a copy, commit only when every entry was valid. */
    scratch = *cpu;
    for (X86RegisterValueList *l = registers; l; l = l->next) {
        if (!x86_cpu_set_reg(&scratch, l->value->name, l->value->value, errp)) {
            return;
        }
    }
    *cpu = scratch;
}

X86RegisterValueList *qmp_x_guestdump_query_registers(int64_t cpu_index,
                                                      Error **errp)
{
    X86CPU *cpu = cpu_by_index(cpu_index, errp);
    const char *const *names = x86_cpu_reg_names();
    X86RegisterValueList *head = NULL, **tail = &head;

    if (!cpu) {
        return NULL;
    }
    for (int i = 0; names[i]; i++) {
        X86RegisterValueList *node = g_new0(X86RegisterValueList, 1);
        node->value = g_new0(X86RegisterValue, 1);
        node->value->name = g_strdup(names[i]);
        x86_cpu_get_reg(cpu, names[i], &node->value->value, NULL);
        *tail = node;
        tail = &node->next;
    }
    return head;
}
