/* -device loader: QEMU's generic loader for raw images, ELF images and data words. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "sysemu/cpus.h"
#include "sysemu/physmem.h"
#include "system/machine-internal.h"

#define LOADER_CHUNK (4u << 20)

/* Parses QEMU's number syntax for device properties (0x, octal, decimal). */
static bool parse_u64(const char *prop, const char *s, uint64_t *out, Error **errp)
{
    char *end;

    errno = 0;
    *out = g_ascii_strtoull(s, &end, 0);
    if (!*s || *end || errno) {
        error_setg(errp, "Parameter '%s' expects a number", prop);
        return false;
    }
    return true;
}

static bool parse_bool(const char *prop, const char *s, bool *out, Error **errp)
{
    if (!strcmp(s, "on") || !strcmp(s, "true") || !strcmp(s, "yes")) {
        *out = true;
    } else if (!strcmp(s, "off") || !strcmp(s, "false") || !strcmp(s, "no")) {
        *out = false;
    } else {
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", prop);
        return false;
    }
    return true;
}

/*
 * Streams the file into guest memory, so a whole-RAM image needs no host
 * copy; the range is checked against RAM before a byte is written.
 */
static bool load_raw_file(const char *file, uint64_t addr, bool has_addr,
                          bool force_raw, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(LOADER_CHUNK);
    struct stat st;
    uint64_t done = 0;
    ssize_t n = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    bool ok = false;

    if (fd < 0 || fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "Cannot load specified image %s", file);
        goto out;
    }
    if (!force_raw && pread(fd, buf, 4, 0) == 4 && !memcmp(buf, "\177ELF", 4)) {
        error_setg(errp, "Cannot load specified image %s: ELF images are not "
                   "supported by this loader; use force-raw=on", file);
        goto out;
    }
    if (!has_addr) {
        error_setg(errp, "Cannot load specified image %s: raw images need addr", file);
        goto out;
    }
    if (!physmem_is_ram(addr, st.st_size)) {
        error_setg(errp, "Cannot load specified image %s: guest-physical range "
                   "0x%llx+0x%llx is outside RAM", file, (unsigned long long)addr,
                   (unsigned long long)st.st_size);
        goto out;
    }
    while (done < (uint64_t)st.st_size &&
           (n = pread(fd, buf, MIN(LOADER_CHUNK, st.st_size - done), done)) > 0) {
        if (!physmem_write_rom(addr + done, buf, n, errp)) {
            goto out;
        }
        done += n;
    }
    if (n < 0 || done < (uint64_t)st.st_size) {
        error_setg_errno(errp, n < 0 ? errno : EIO,
                         "Cannot load specified image %s", file);
        goto out;
    }
    ok = true;
out:
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

bool loader_device_add(const char *optarg, Error **errp)
{
    g_auto(GStrv) props = g_strsplit(optarg, ",", -1);
    g_autofree char *file = NULL;
    uint64_t addr = 0, data = 0, data_len = 0, cpu_num = 0;
    bool has_addr = false, has_data = false, has_cpu = false, force_raw = false;

    for (int i = 1; props[i]; i++) {
        char *eq = strchr(props[i], '=');
        const char *val = eq ? eq + 1 : "on";
        bool ok = true;

        if (eq) {
            *eq = '\0';
        }
        if (!strcmp(props[i], "file")) {
            g_free(file);
            file = g_strdup(val);
        } else if (!strcmp(props[i], "addr")) {
            ok = parse_u64("addr", val, &addr, errp);
            has_addr = true;
        } else if (!strcmp(props[i], "data")) {
            ok = parse_u64("data", val, &data, errp);
            has_data = true;
        } else if (!strcmp(props[i], "data-len")) {
            ok = parse_u64("data-len", val, &data_len, errp);
        } else if (!strcmp(props[i], "cpu-num")) {
            ok = parse_u64("cpu-num", val, &cpu_num, errp);
            has_cpu = true;
        } else if (!strcmp(props[i], "force-raw")) {
            ok = parse_bool("force-raw", val, &force_raw, errp);
        } else if (!strcmp(props[i], "id")) {
            /* accepted and ignored, as a name only */
        } else {
            error_setg(errp, "Property 'loader.%s' not found", props[i]);
            return false;
        }
        if (!ok) {
            return false;
        }
    }

    if (has_data) {
        uint64_t le = GUINT64_TO_LE(data);
        if (file || force_raw) {
            error_setg(errp, "data can not be specified when setting a program "
                       "counter or loading a file");
            return false;
        }
        if (!has_addr) {
            error_setg(errp, "data can not be specified without an address");
            return false;
        }
        if (data_len != 1 && data_len != 2 && data_len != 4 && data_len != 8) {
            error_setg(errp, "data-len must be 1, 2, 4 or 8 bytes");
            return false;
        }
        return physmem_write_rom(addr, &le, data_len, errp);
    }
    if (!file) {
        if (has_cpu && has_addr) {
            X86CPU *cpu = cpu_num < (uint64_t)machine_cpu_count() ?
                          machine_cpu(cpu_num) : NULL;
            if (!cpu) {
                error_setg(errp, "Specified boot CPU#%llu is nonexistent",
                           (unsigned long long)cpu_num);
                return false;
            }
            cpu->env.eip = addr;
            return true;
        }
        error_setg(errp, "please include valid arguments");
        return false;
    }
    return load_raw_file(file, addr, has_addr, force_raw, errp);
}
