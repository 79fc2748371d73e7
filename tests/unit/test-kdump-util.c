/* Helpers of the kdump tests: guests in memory or from an ELF vmcore; writer runs. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "test-kdump-util.h"

KdumpTestGuest *kdump_test_guest_new(void)
{
    KdumpTestGuest *g = g_new0(KdumpTestGuest, 1);

    g->mem = g_ptr_array_new_with_free_func(g_free);
    g->notes = g_byte_array_new();
    g->d_class = ELFCLASS64;
    return g;
}

void kdump_test_guest_free(KdumpTestGuest *g)
{
    if (!g) {
        return;
    }
    g_ptr_array_unref(g->mem);
    g_byte_array_unref(g->notes);
    g_free(g->blocks.blocks);
    g_free(g);
}

uint8_t *kdump_test_guest_add_block(KdumpTestGuest *g, uint64_t gpa, uint64_t size)
{
    uint8_t *mem = g_malloc0(size ? size : 1);
    DumpGuestBlock *b;

    g_ptr_array_add(g->mem, mem);
    g->blocks.blocks = g_renew(DumpGuestBlock, g->blocks.blocks, g->blocks.num + 1);
    b = &g->blocks.blocks[g->blocks.num++];
    b->target_start = gpa;
    b->target_end = gpa + size;
    b->host_addr = mem;
    return mem;
}

void kdump_test_guest_add_note(KdumpTestGuest *g, const char *name, uint32_t type,
                               const void *desc, size_t descsz, bool guest)
{
    uint32_t hdr[3] = { strlen(name) + 1, descsz, type };
    size_t start = g->notes->len;
    static const uint8_t pad[4];

    g_byte_array_append(g->notes, (const uint8_t *)hdr, sizeof(hdr));
    g_byte_array_append(g->notes, (const uint8_t *)name, hdr[0]);
    g_byte_array_append(g->notes, pad, (4 - hdr[0] % 4) % 4);
    g_byte_array_append(g->notes, desc, descsz);
    g_byte_array_append(g->notes, pad, (4 - descsz % 4) % 4);
    if (guest) {
        g->guest_note_offset = start;
        g->guest_note_size = g->notes->len - start;
    } else if (!strcmp(name, "CORE")) {
        g->nr_cpus++;
    }
}

static bool note_walk(KdumpTestGuest *g)
{
    const uint8_t *p = g->notes->data;
    size_t len = g->notes->len, off = 0;

    g->nr_cpus = 0;
    g->guest_note_size = 0;
    while (off + 12 <= len) {
        uint32_t namesz, descsz;
        size_t size;
        const char *name = (const char *)p + off + 12;

        memcpy(&namesz, p + off, 4);
        memcpy(&descsz, p + off + 4, 4);
        size = 12 + (((uint64_t)namesz + 3) & ~3ull) + (((uint64_t)descsz + 3) & ~3ull);
        if (size > len - off) {
            return false;
        }
        if (namesz == 5 && !memcmp(name, "CORE", 5)) {
            g->nr_cpus++;
        } else if (!(namesz == 5 && !memcmp(name, "QEMU", 5))) {
            g->guest_note_offset = off;
            g->guest_note_size = size;
            if (namesz == 11 && !memcmp(name, "VMCOREINFO", 11)) {
                g_autofree char *text = g_strndup((const char *)p + off + 12 + 12,
                                                  descsz);
                const char *v = strstr(text, "NUMBER(phys_base)=");

                /* As our dump core reads it: decimal, or hex with 0x. */
                if (v) {
                    g->phys_base = g_ascii_strtoull(v + 18, NULL, 0);
                }
            }
        }
        off += size;
    }
    return off == len;
}

KdumpTestGuest *kdump_test_guest_from_elf(const char *path, GError **gerr)
{
    g_autofree uint8_t *f = NULL;
    gsize len;
    KdumpTestGuest *g;
    bool is64;
    uint64_t phoff, phnum;
    size_t phentsize;

    if (!g_file_get_contents(path, (gchar **)&f, &len, gerr)) {
        return NULL;
    }
    if (len < sizeof(Elf64_Ehdr) || memcmp(f, ELFMAG, SELFMAG)) {
        g_set_error(gerr, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not ELF", path);
        return NULL;
    }
    g = kdump_test_guest_new();
    is64 = f[EI_CLASS] == ELFCLASS64;
    g->d_class = f[EI_CLASS];
    if (is64) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;

        phoff = eh->e_phoff;
        phnum = eh->e_phnum;
        phentsize = sizeof(Elf64_Phdr);
        if (phnum == PN_XNUM) {
            phnum = ((const Elf64_Shdr *)(f + eh->e_shoff))->sh_info;
        }
    } else {
        const Elf32_Ehdr *eh = (const Elf32_Ehdr *)f;

        phoff = eh->e_phoff;
        phnum = eh->e_phnum;
        phentsize = sizeof(Elf32_Phdr);
        if (phnum == PN_XNUM) {
            phnum = ((const Elf32_Shdr *)(f + eh->e_shoff))->sh_info;
        }
    }
    if (phoff + phnum * phentsize > len) {
        goto bad;
    }
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *ph = f + phoff + i * phentsize;
        uint32_t type;
        uint64_t off, filesz, paddr;

        if (is64) {
            const Elf64_Phdr *p = (const Elf64_Phdr *)ph;

            type = p->p_type;
            off = p->p_offset;
            filesz = p->p_filesz;
            paddr = p->p_paddr;
        } else {
            const Elf32_Phdr *p = (const Elf32_Phdr *)ph;

            type = p->p_type;
            off = p->p_offset;
            filesz = p->p_filesz;
            paddr = p->p_paddr;
        }
        if (off > len || filesz > len - off) {
            goto bad;
        }
        if (type == PT_NOTE) {
            g_byte_array_append(g->notes, f + off, filesz);
        } else if (type == PT_LOAD && filesz) {
            memcpy(kdump_test_guest_add_block(g, paddr, filesz), f + off, filesz);
        }
    }
    if (!note_walk(g)) {
        goto bad;
    }
    return g;

bad:
    g_set_error(gerr, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: malformed vmcore", path);
    kdump_test_guest_free(g);
    return NULL;
}

static uint32_t xorshift(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

void kdump_test_fill_mix(uint8_t *mem, size_t size, size_t page_size, uint32_t seed)
{
    static const char *const words[] = {
        "static ", "int ", "return ", "struct ", "page", "dump", "(void)", ";\n",
        "    ", "if (", ") {\n", "}\n", "guest", "memory", "0x1000", "uint64_t ",
    };
    uint32_t st = seed ? seed : 1;
    size_t npages = size / page_size;
    size_t p = 0;

    while (p < npages) {
        uint32_t r = xorshift(&st) % 10;
        size_t run = 1 + xorshift(&st) % 15;

        for (; run > 0 && p < npages; run--, p++) {
            uint8_t *pg = mem + p * page_size;

            if (r < 4) {
                memset(pg, 0, page_size);
            } else if (r < 8) {
                size_t o = 0;

                while (o < page_size) {
                    const char *w = words[xorshift(&st) % G_N_ELEMENTS(words)];
                    size_t n = MIN(strlen(w), page_size - o);

                    memcpy(pg + o, w, n);
                    o += n;
                }
            } else {
                for (size_t o = 0; o + 4 <= page_size; o += 4) {
                    uint32_t v = xorshift(&st);

                    memcpy(pg + o, &v, 4);
                }
            }
        }
    }
}

bool kdump_test_cancel;
int kdump_test_dump_level = -1;

bool kdump_test_write_fd(KdumpTestGuest *g, uint32_t flag, bool raw, int threads,
                         int fd, bool seekable, char **msg)
{
    DumpFormatInfo fmt = {
        .writer = &dump_kdump_writer,
        .kdump_flag = flag,
        .kdump_raw = raw,
        .available = true,
    };
    g_autofree DumpPlan *s = g_new0(DumpPlan, 1);
    g_autofree DumpJob *job = g_new0(DumpJob, 1);
    Error *err = NULL;
    DumpOutput *out = dump_output_new_fd(fd, seekable);
    bool ok;

    if (!raw) {
        DumpOutput *flat = dump_output_new_flattened(out, &err);

        if (!flat) {
            dump_output_free(out);
            *msg = g_strdup(error_get_pretty(err));
            error_free(err);
            return false;
        }
        out = flat;
    }
    s->fmt = &fmt;
    s->guest_phys_blocks = g->blocks;
    s->dump_info = (DumpArchInfo){
        .d_machine = EM_X86_64,
        .d_endian = ELFDATA2LSB,
        .d_class = g->d_class,
        .page_size = 4096,
        .phys_base = g->phys_base,
    };
    s->nr_cpus = g->nr_cpus;
    s->notes = g->notes->data;
    s->note_size = g->notes->len;
    if (g->guest_note_size) {
        s->guest_note = g->notes->data + g->guest_note_offset;
        s->guest_note_size = g->guest_note_size;
    }
    job->plan = s;
    job->out = out;
    atomic_store(&job->cancel, kdump_test_cancel);
    for (size_t i = 0; i < g->blocks.num; i++) {
        s->total_size += g->blocks.blocks[i].target_end -
                         g->blocks.blocks[i].target_start;
    }
    dump_set_thread_count(threads);
    ok = true;
    if (kdump_test_dump_level >= 0) {
        s->has_dump_level = true;
        s->dump_level = kdump_test_dump_level;
        ok = dump_linux_mm_parse(s, s->dump_level, &s->linux_mm, &err);
    }
    ok = ok && dump_kdump_writer.prepare(job, &err);
    /* What dump_run does first: the flat header, with 7.2's text on failure */
    if (ok && !dump_output_start(out)) {
        error_setg(&err, "dump: failed to write start flat header");
        ok = false;
    }
    ok = ok && dump_kdump_writer.write(job, &err);
    dump_kdump_writer.cleanup(job);
    dump_linux_mm_free(s->linux_mm);
    if (ok) {
        if (!dump_output_finish(out)) {
            error_setg_errno(&err, errno, "finish");
            ok = false;
        }
    } else {
        dump_output_free(out);
    }
    if (!ok) {
        *msg = g_strdup(error_get_pretty(err));
        error_free(err);
    }
    return ok;
}

bool kdump_test_write(KdumpTestGuest *g, uint32_t flag, bool raw, int threads,
                      const char *path, char **msg)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    if (fd < 0) {
        *msg = g_strdup_printf("%s: %s", path, g_strerror(errno));
        return false;
    }
    return kdump_test_write_fd(g, flag, raw, threads, fd, raw, msg);
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

GArray *kdump_test_flat_records(const uint8_t *flat, size_t len)
{
    GArray *recs = g_array_new(FALSE, FALSE, sizeof(uint64_t) * 2);
    size_t pos = 4096;

    if (len < 4096 || memcmp(flat, "makedumpfile", 13) || get_be64(flat + 16) != 1) {
        g_array_unref(recs);
        return NULL;
    }
    while (pos + 16 <= len) {
        uint64_t r[2] = { get_be64(flat + pos), get_be64(flat + pos + 8) };

        pos += 16;
        if (r[0] == UINT64_MAX && r[1] == UINT64_MAX) {
            if (pos != len) {
                break;
            }
            return recs;
        }
        /* makedumpfile -R stops at a record that is not a positive size. */
        if ((int64_t)r[0] < 0 || (int64_t)r[1] <= 0 || r[1] > len - pos) {
            break;
        }
        g_array_append_val(recs, r);
        pos += r[1];
    }
    g_array_unref(recs);
    return NULL;
}

GByteArray *kdump_test_reassemble(const uint8_t *flat, size_t len)
{
    g_autoptr(GArray) recs = kdump_test_flat_records(flat, len);
    GByteArray *out;
    uint64_t end = 0;
    size_t pos = 4096;

    if (!recs) {
        return NULL;
    }
    for (guint i = 0; i < recs->len; i++) {
        const uint64_t *r = &g_array_index(recs, uint64_t, 2 * i);

        end = MAX(end, r[0] + r[1]);
    }
    out = g_byte_array_sized_new(end);
    g_byte_array_set_size(out, end);
    memset(out->data, 0, end);
    for (guint i = 0; i < recs->len; i++) {
        const uint64_t *r = &g_array_index(recs, uint64_t, 2 * i);

        pos += 16;
        memcpy(out->data + r[0], flat + pos, r[1]);
        pos += r[1];
    }
    return out;
}

char *kdump_test_find_program(const char *name)
{
    if (g_path_is_absolute(name)) {
        return g_file_test(name, G_FILE_TEST_IS_EXECUTABLE) ? g_strdup(name) : NULL;
    }
    return g_find_program_in_path(name);
}
