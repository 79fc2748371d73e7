/* The HMP command tables: one row per command, sorted by name (help lists them so). */
#include "monitor/hmp.h"

/* Add "info <x>" rows here (see include/monitor/hmp.h). */
const HMPCommand hmp_info_cmds[] = {
    { "dump", "", "", "Display the latest dump status", hmp_info_dump },
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
    { "dump-guest-memory",
      "paging:-p,detach:-d,windmp:-w,zlib:-z,lzo:-l,snappy:-s,raw:-R,"
      "dump-level:-Di,filename:F,begin:l?,length:l?",
      "[-p] [-d] [-z|-l|-s|-w] [-R] [-D level] filename [begin length]",
      "write the guest's memory to 'filename' (a vmcore).\n\t\t\t"
      "-p: walk the guest's page tables, so debuggers see virtual addresses.\n\t\t\t"
      "-d: run in the background; follow it with 'info dump'.\n\t\t\t"
      "-z: kdump-compressed (makedumpfile) format, zlib.\n\t\t\t"
      "-l: kdump-compressed (makedumpfile) format, lzo.\n\t\t\t"
      "-s: kdump-compressed (makedumpfile) format, snappy.\n\t\t\t"
      "-R: with -z, -l or -s: a plain kdump file instead of the\n\t\t\t"
      "    flattened stream (needs a seekable file).\n\t\t\t"
      "-w: Windows full crash dump, for Windows guests whose\n\t\t\t"
      "    vmcoreinfo driver supplied a dump header.\n\t\t\t"
      "-D: with -z, -l or -s: leave out the pages makedumpfile's\n\t\t\t"
      "    -d level (0-31) leaves out, for a Linux guest.\n\t\t\t"
      "begin: first guest-physical address to dump (ELF only).\n\t\t\t"
      "length: number of bytes to dump from begin (ELF only).",
      hmp_dump_guest_memory },
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
