/* The HMP command tables: one row per command, sorted by name (help lists them so). */
#include "monitor/hmp.h"

/* Add "info <x>" rows here (see include/monitor/hmp.h). */
const HMPCommand hmp_info_cmds[] = {
    { "status", "", "", "show the current VM status (running|paused)",
      hmp_info_status },
    { "version", "", "", "show the version of QEMU", hmp_info_version },
    { NULL },
};

/* Add command rows here, keeping the table sorted (see include/monitor/hmp.h). */
const HMPCommand hmp_cmds[] = {
    { "closefd", "fdname:s", "closefd name",
      "close a file descriptor previously passed via SCM rights", hmp_closefd },
    { "cont|c", "", "", "resume emulation", hmp_cont },
    { "getfd", "fdname:s", "getfd name",
      "receive a file descriptor via SCM rights and assign it a name", hmp_getfd },
    { "help|?", "name:S?", "[cmd]", "show the help", hmp_help },
    { "info", "item:s?", "[subcommand]",
      "show various information about the system state", hmp_info_help,
      hmp_info_cmds },
    { "quit|q", "", "", "quit the emulator", hmp_quit },
    { "stop|s", "", "", "stop emulation", hmp_stop },
    { NULL },
};
