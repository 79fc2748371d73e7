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
      "filename:F,begin:l?,length:l?",
      "[-p] [-d] [-z|-l|-s|-w] [-R] filename [begin length]",
      "dump guest memory into file 'filename'.\n\t\t\t"
      "-p: do paging to get guest's memory mapping.\n\t\t\t"
      "-d: return immediately (do not wait for completion).\n\t\t\t"
      "-z: dump in kdump-compressed format, with zlib compression.\n\t\t\t"
      "-l: dump in kdump-compressed format, with lzo compression.\n\t\t\t"
      "-s: dump in kdump-compressed format, with snappy compression.\n\t\t\t"
      "-R: when using kdump (-z, -l, -s), use raw rather than\n\t\t\t"
      "    makedumpfile-flattened format\n\t\t\t"
      "-w: dump in Windows crashdump format (can be used instead of ELF-dump\n\t\t\t"
      "    converting), for Windows x86 and x64 guests with vmcoreinfo driver\n\t\t\t"
      "    only.\n\t\t\t"
      "begin: the starting physical address.\n\t\t\t"
      "length: the memory size, in bytes.",
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
