/* The machine's vCPUs: creation in reset state and lookup by index. */
#include <glib.h>

#include "sysemu/cpus.h"
#include "system/machine-internal.h"

static X86CPU *cpus;
static int cpu_count;

void machine_cpus_create(int n)
{
    g_assert(n >= 0 && n <= MACHINE_MAX_CPUS);
    machine_cpus_destroy();
    cpus = g_new0(X86CPU, n ? n : 1);
    cpu_count = n;
    for (int i = 0; i < n; i++) {
        cpus[i].cpu_index = i;
        x86_cpu_reset(&cpus[i]);
    }
}

void machine_cpus_destroy(void)
{
    g_free(cpus);
    cpus = NULL;
    cpu_count = 0;
}

int machine_cpu_count(void)
{
    return cpu_count;
}

X86CPU *machine_cpu(int index)
{
    if (index < 0 || index >= cpu_count) {
        return NULL;
    }
    return &cpus[index];
}
