/* What the QMP and HMP harnesses share: a machine, and commands made safe to run. */
#ifndef TESTS_FUZZ_FUZZ_MONITOR_H
#define TESTS_FUZZ_FUZZ_MONITOR_H

/*
 * The harnesses link with -Wl,--wrap for qmp_dump_guest_memory and qmp_quit
 * (fuzz-monitor.c): every command runs with all its checks, but a dump goes
 * to /dev/null instead of a file the input names, and quit ends nothing.
 */

/* A small pc (4 MiB, 2 vCPUs, vmcoreinfo) the commands act on; once per process. */
void fuzz_monitor_machine_init(void);
/* After an input: lets a detached dump end and delivers pending events. */
void fuzz_monitor_settle(void);

#endif
