/* The machine's vCPUs, in CPU-list order. */
#ifndef SYSEMU_CPUS_H
#define SYSEMU_CPUS_H

#include "target/i386/cpu.h"

int machine_cpu_count(void);
/* NULL when index is out of range. Only touch a vCPU while the VM is stopped. */
X86CPU *machine_cpu(int index);

#endif
