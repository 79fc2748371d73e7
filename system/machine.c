/* Machine creation: QEMU 7.2 pc/q35/none memory layout, firmware, vCPUs, devices. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <glib.h>

#include "hw/fw_cfg.h"
#include "sysemu/cpus.h"
#include "sysemu/machine.h"
#include "sysemu/physmem.h"
#include "system/demo.h"
#include "system/machine-internal.h"
#include "system/restore.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

#define MACHINE_DEFAULT_RAM (128 * MiB)
/* Far beyond any host here, and small enough that gpa arithmetic never wraps. */
#define MACHINE_MAX_RAM     (16ULL << 40)

/* Region ids (RAMBlock.region): blocks of one id may merge in a dump. */
enum { REGION_RAM = 1, REGION_OPTION_ROM, REGION_BIOS };

/* Where QEMU (Debian) finds its default firmware. */
static const char *const firmware_dirs[] = {
    "/usr/share/seabios", "/usr/share/qemu", NULL,
};

static void *machine_ram;
static uint64_t machine_ram_size;

/*
 * The RAM split below 4 GiB for a -S guest, as QEMU 7.2 computes it:
 * pc (i440fx) keeps 3.5 GiB below the PCI hole unless RAM reaches it, then
 * 3 GiB; q35 keeps 2.75 GiB unless RAM reaches it, then 2 GiB.
 */
static uint64_t ram_below_4g(const char *type, uint64_t ram)
{
    uint64_t lowmem;

    if (!strcmp(type, "q35")) {
        lowmem = ram >= 0xb0000000ULL ? 0x80000000ULL : 0xb0000000ULL;
    } else {
        lowmem = ram >= 0xe0000000ULL ? 0xc0000000ULL : 0xe0000000ULL;
    }
    return MIN(ram, lowmem);
}

static char *find_firmware(const char *name)
{
    if (strchr(name, '/') || g_file_test(name, G_FILE_TEST_EXISTS)) {
        return g_strdup(name);
    }
    for (int i = 0; firmware_dirs[i]; i++) {
        char *path = g_build_filename(firmware_dirs[i], name, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
            return path;
        }
        g_free(path);
    }
    return NULL;
}

/* Loads the BIOS image, or 256 KiB of zeros when no image is installed. */
static bool load_bios(const char *bios, uint8_t **data, gsize *len, Error **errp)
{
    g_autofree char *path = find_firmware(bios ? bios : "bios-256k.bin");
    g_autoptr(GError) gerr = NULL;

    if (!path) {
        if (bios) {
            error_setg(errp, "could not find firmware '%s'", bios);
            return false;
        }
        *data = g_malloc0(256 * KiB);
        *len = 256 * KiB;
        return true;
    }
    if (!g_file_get_contents(path, (char **)data, len, &gerr)) {
        error_setg(errp, "could not load PC BIOS '%s': %s", path, gerr->message);
        return false;
    }
    /* QEMU's rule: whole 64 KiB units, and it must fit below 4 GiB sensibly. */
    if (*len == 0 || *len % (64 * KiB) != 0 || *len > 16 * MiB) {
        g_free(*data);
        error_setg(errp, "could not load PC BIOS '%s'", path);
        return false;
    }
    return true;
}

/* A legacy VGA device claims 0xa0000-0xbffff for its MMIO window (vga-lowmem). */
static bool has_vga(const MachineOptions *opts)
{
    for (guint i = 0; opts->devices && i < opts->devices->len; i++) {
        const char *spec = g_ptr_array_index(opts->devices, i);
        if (!strncmp(spec, "VGA", 3) && (spec[3] == '\0' || spec[3] == ',')) {
            return true;
        }
    }
    return false;
}

static bool pc_memory_init(const MachineOptions *opts, uint64_t ram, Error **errp)
{
    uint64_t below = ram_below_4g(opts->machine_type, ram);
    uint64_t above = ram - below;
    g_autofree uint8_t *bios = NULL;
    gsize bios_size = 0;
    uint64_t isa_size;
    const RAMBlock *rb;
    uint8_t *host;

    if (!load_bios(opts->bios, &bios, &bios_size, errp)) {
        return false;
    }
    host = mmap(NULL, ram, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (host == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot set up guest memory 'pc.ram'");
        return false;
    }
    machine_ram = host;
    machine_ram_size = ram;

    /*
     * Under -S the chipset still routes 0xc0000-0xfffff to ROM (PAM), so the
     * RAM behind it is not dumped; 0xa0000-0xbffff is RAM unless a VGA
     * device puts its window there.
     */
    if (!physmem_add_block("pc.ram", 0, MIN(below, has_vga(opts) ? 0xa0000 : 0xc0000),
                           host, false, REGION_RAM, errp)) {
        return false;
    }
    if (below > MiB &&
        !physmem_add_block("pc.ram", MiB, below - MiB, host + MiB, false,
                           REGION_RAM, errp)) {
        return false;
    }
    if (above &&
        !physmem_add_block("pc.ram", 4 * GiB, above, host + below, false,
                           REGION_RAM, errp)) {
        return false;
    }
    if (!physmem_add_block("pc.rom", 0xc0000, 128 * KiB, NULL, true,
                           REGION_OPTION_ROM, errp)) {
        return false;
    }
    rb = physmem_add_block("pc.bios", 4 * GiB - bios_size, bios_size, NULL, true,
                           REGION_BIOS, errp);
    if (!rb) {
        return false;
    }
    memcpy(rb->host, bios, bios_size);
    /* The ISA window below 1 MiB shows the top 128 KiB of the same ROM. */
    isa_size = MIN(bios_size, 128 * KiB);
    return physmem_add_block("pc.bios", MiB - isa_size, isa_size,
                             rb->host + bios_size - isa_size, true, REGION_BIOS,
                             errp) != NULL;
}

/*
 * Devices are realized in two passes: the vmcoreinfo device with the board,
 * loaders last, so their bytes win over what the guest source put there
 * (QEMU applies loader blobs at reset, after the board is built).
 */
static bool add_device(const char *spec, bool loaders, Error **errp)
{
    g_autofree char *driver = g_strndup(spec, strcspn(spec, ","));

    if (!strcmp(driver, "vmcoreinfo")) {
        if (loaders) {
            return true;
        }
        if (spec[strlen(driver)] != '\0') {
            error_setg(errp, "vmcoreinfo: the device takes no properties");
            return false;
        }
        return vmcoreinfo_realize(errp);
    }
    if (!strcmp(driver, "loader")) {
        return !loaders || loader_device_add(spec, errp);
    }
    if (!strcmp(driver, "VGA")) {
        return true;    /* only its memory window matters; see has_vga() */
    }
    error_setg(errp, "'%s' is not a valid device model name", driver);
    return false;
}

static bool add_devices(const MachineOptions *opts, bool loaders, Error **errp)
{
    for (guint i = 0; opts->devices && i < opts->devices->len; i++) {
        if (!add_device(g_ptr_array_index(opts->devices, i), loaders, errp)) {
            return false;
        }
    }
    return true;
}

bool machine_init(const MachineOptions *opts, Error **errp)
{
    const char *type = opts->machine_type ? opts->machine_type : "pc";
    MachineOptions o = *opts;
    uint64_t ram = opts->ram_size ? opts->ram_size : MACHINE_DEFAULT_RAM;
    bool is_none = !strcmp(type, "none");
    int smp = opts->smp > 0 ? opts->smp : 1;

    o.machine_type = (char *)type;
    if (!is_none && strcmp(type, "pc") && strcmp(type, "q35")) {
        error_setg(errp, "unsupported machine type '%s' (use pc, q35 or none)", type);
        return false;
    }
    if (ram > MACHINE_MAX_RAM) {
        error_setg(errp, "ram size too large");
        return false;
    }
    if (!is_none) {
        /* QEMU 7.2's limits and the versioned names its message uses */
        bool q35 = !strcmp(type, "q35");
        int max = q35 ? MACHINE_MAX_CPUS : 255;
        if (smp > max) {
            error_setg(errp, "Invalid SMP CPUs %d. The max CPUs supported by machine "
                       "'%s' is %d", smp, q35 ? "pc-q35-7.2" : "pc-i440fx-7.2", max);
            return false;
        }
    }
    physmem_reset();
    if (opts->restore) {
        /* The file decides memory and vCPUs; -m and -smp do not apply. */
        if (opts->demo) {
            error_setg(errp, "-demo and -restore cannot be used together");
            goto fail;
        }
        if (!restore_vmcore(opts->restore, opts->restore_max_ram, errp)) {
            goto fail;
        }
        if (!is_none) {
            fw_cfg_init(true);
        }
    } else if (is_none) {
        /* No firmware, no chipset, no vCPU: only the RAM -m asks for. */
        if (opts->ram_size &&
            !physmem_add_block("ram", 0, opts->ram_size, NULL, false, REGION_RAM,
                               errp)) {
            goto fail;
        }
        machine_cpus_create(0);
    } else {
        if (!pc_memory_init(&o, ram, errp)) {
            goto fail;
        }
        machine_cpus_create(smp);
        fw_cfg_init(true);
        uint64_t ram_le = GUINT64_TO_LE(ram);
        uint16_t cpus_le = GUINT16_TO_LE(smp);
        fw_cfg_add_bytes(FW_CFG_RAM_SIZE, &ram_le, sizeof(ram_le));
        fw_cfg_add_bytes(FW_CFG_NB_CPUS, &cpus_le, sizeof(cpus_le));
        fw_cfg_add_bytes(FW_CFG_MAX_CPUS, &cpus_le, sizeof(cpus_le));
    }
    if (!add_devices(opts, false, errp)) {
        goto fail;
    }
    if (opts->restore && !restore_finish(errp)) {
        goto fail;
    }
    if (opts->demo && !demo_guest_init(opts->demo_seed, errp)) {
        goto fail;
    }
    if (opts->demo_write_load && !opts->demo) {
        error_setg(errp, "-demo-write-load needs -demo");
        goto fail;
    }
    if (!add_devices(opts, true, errp)) {
        goto fail;
    }
    if (opts->qtest && !qtest_server_init(opts->qtest, errp)) {
        goto fail;
    }
    if (opts->demo_write_load && !demo_write_load_start(errp)) {
        goto fail;
    }
    return true;

fail:
    machine_cleanup();
    return false;
}

void machine_cleanup(void)
{
    qtest_server_cleanup();
    demo_write_load_stop();
    demo_guest_cleanup();
    restore_cleanup();
    vmcoreinfo_cleanup();
    fw_cfg_cleanup();
    ioport_reset();
    machine_cpus_destroy();
    physmem_reset();
    if (machine_ram) {
        munmap(machine_ram, machine_ram_size);
        machine_ram = NULL;
    }
}
