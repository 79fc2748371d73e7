/* Input recognition by content, for -restore and guestdump-convert. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu/bswap.h"
#include "system/vmcore-probe.h"

#define ET_CORE 4

VmcoreKind vmcore_probe_bytes(const uint8_t *buf, size_t len)
{
    if (len == 0) {
        return VMCORE_KIND_EMPTY;
    }
    if (len >= 4 && !memcmp(buf, "\177ELF", 4)) {
        /* e_type is at 16 in both classes; a file too short for it is a core to be refused as truncated */
        if (len >= 18 && lduw_le_p(buf + 16) != ET_CORE) {
            return VMCORE_KIND_ELF_OTHER;
        }
        return VMCORE_KIND_ELF_CORE;
    }
    if (len >= 8 && !memcmp(buf, "KDUMP   ", 8)) {
        return VMCORE_KIND_KDUMP_RAW;
    }
    if (len >= 12 && !memcmp(buf, "makedumpfile", 12)) {
        return VMCORE_KIND_KDUMP_FLAT;
    }
    if (len >= 4 && !memcmp(buf, "QEVM", 4)) {
        return VMCORE_KIND_QEMU_MIGRATION;
    }
    if (len >= 8 && (!memcmp(buf, "PAGEDUMP", 8) || !memcmp(buf, "PAGEDU64", 8))) {
        return VMCORE_KIND_WINDOWS_DUMP;
    }
    return VMCORE_KIND_UNKNOWN;
}

VmcoreKind vmcore_probe_fd(int fd)
{
    uint8_t buf[VMCORE_PROBE_BYTES];
    struct stat st;
    size_t got = 0;

    if (fstat(fd, &st) < 0) {
        return VMCORE_KIND_UNKNOWN;
    }
    if (!S_ISREG(st.st_mode)) {
        return VMCORE_KIND_NOT_REGULAR;
    }
    while (got < sizeof(buf)) {
        ssize_t n = pread(fd, buf + got, sizeof(buf) - got, got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return VMCORE_KIND_UNKNOWN;
        }
        if (n == 0) {
            break;
        }
        got += n;
    }
    return vmcore_probe_bytes(buf, got);
}

const char *vmcore_kind_message(VmcoreKind kind)
{
    switch (kind) {
    case VMCORE_KIND_ELF_CORE:
        return "an ELF vmcore";
    case VMCORE_KIND_KDUMP_RAW:
        return "a kdump-compressed file";
    case VMCORE_KIND_KDUMP_FLAT:
        return "a kdump-compressed file in makedumpfile's flattened format";
    case VMCORE_KIND_ELF_OTHER:
        return "an ELF file that is not a core dump (ELF type is not ET_CORE): not a vmcore";
    case VMCORE_KIND_QEMU_MIGRATION:
        return "a QEMU migration stream or savevm file (\"QEVM\"), not a memory dump: "
               "load it into QEMU (-incoming or loadvm) and dump the guest from there";
    case VMCORE_KIND_WINDOWS_DUMP:
        return "a Windows crash dump (\"PAGEDUMP\"/\"PAGEDU64\"), which is an output "
               "format only: open it in WinDbg";
    case VMCORE_KIND_EMPTY:
        return "an empty file";
    case VMCORE_KIND_NOT_REGULAR:
        return "not a regular file (a pipe, device or directory): vmcores are read "
               "from regular files";
    case VMCORE_KIND_UNKNOWN:
        break;
    }
    return "not an ELF vmcore nor a kdump-compressed file (unrecognised first bytes)";
}

bool vmcore_kind_readable(VmcoreKind kind)
{
    return kind == VMCORE_KIND_ELF_CORE || kind == VMCORE_KIND_KDUMP_RAW ||
           kind == VMCORE_KIND_KDUMP_FLAT;
}

bool vmcore_pread(int fd, uint64_t size, uint64_t off, void *buf, uint64_t len,
                  const char *name, const char *what, Error **errp)
{
    uint8_t *p = buf;

    if (off > size || len > size - off) {
        error_setg(errp, "%s is truncated: %s at offset 0x%llx+0x%llx is past the "
                   "end of the file (0x%llx bytes)", name, what, (unsigned long long)off,
                   (unsigned long long)len, (unsigned long long)size);
        return false;
    }
    while (len > 0) {
        ssize_t n = pread(fd, p, MIN(len, 1u << 30), off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error_setg_errno(errp, n < 0 ? errno : EIO, "cannot read %s of the %s",
                             what, name);
            return false;
        }
        p += n;
        off += n;
        len -= n;
    }
    return true;
}

int vmcore_tmpfile(const char *why, Error **errp)
{
    const char *dir = g_get_tmp_dir();
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a temporary file in %s to %s",
                         dir, why);
    }
    return fd;
}
