/* The demo guest's write load: a vCPU-like thread that rewrites guest RAM without pause. */
#include <glib.h>
#include <stdatomic.h>
#include <string.h>

#include "sysemu/physmem.h"
#include "sysemu/runstate.h"
#include "system/demo.h"

/*
 * -demo-write-load (docs/demo-guest.md, "Write load"): while the VM runs, a
 * thread writes pass number P into all 512 words of every page of writable
 * RAM from DEMO_LOAD_START up, in guest-physical order, pass after pass,
 * and after each page records in the status page where it stands. It
 * stores through the RAM's host pointers as a vCPU does, so it meets a
 * live dump's write protection like one. A stop waits until the thread
 * stands between two pages, so RAM and the status page always agree: a
 * dump taken at a stop must show every page before the recorded index with
 * P and every later one with P - 1.
 */
typedef struct DemoLoad {
    GThread *thread;
    GMutex lock;
    GCond cond;
    atomic_bool run;            /* the VM runs */
    bool parked;                /* under lock: the thread waits between pages */
    bool quit;                  /* under lock */
} DemoLoad;

static DemoLoad *load;
static bool handler_added;

static void load_status(uint64_t pass, uint64_t index, uint64_t pages)
{
    uint64_t *st = (uint64_t *)physmem_host_ptr(DEMO_LOAD_STATUS, 4096);

    /* The same order a guest kernel would use: the counters, then the magic. */
    st[1] = GUINT64_TO_LE(pass);
    st[2] = GUINT64_TO_LE(index);
    st[3] = GUINT64_TO_LE(pages);
    memcpy(&st[0], "GDLOAD01", 8);
}

/* False when the load must end. */
static bool load_wait_running(DemoLoad *l)
{
    bool go;

    if (atomic_load(&l->run)) {
        return true;
    }
    g_mutex_lock(&l->lock);
    l->parked = true;
    g_cond_broadcast(&l->cond);
    while (!atomic_load(&l->run) && !l->quit) {
        g_cond_wait(&l->cond, &l->lock);
    }
    l->parked = false;
    go = !l->quit;
    g_mutex_unlock(&l->lock);
    return go;
}

static uint64_t load_pages(void)
{
    uint64_t pages = 0;

    for (size_t i = 0; i < physmem_block_count(); i++) {
        const RAMBlock *rb = physmem_block(i);
        uint64_t lo = MAX(rb->gpa, DEMO_LOAD_START);

        if (!rb->readonly && rb->gpa + rb->size > lo) {
            pages += (rb->gpa + rb->size - lo) / 4096;
        }
    }
    return pages;
}

static gpointer load_thread(gpointer opaque)
{
    DemoLoad *l = opaque;
    uint64_t pages = load_pages();

    for (uint64_t pass = 1;; pass++) {
        uint64_t index = 0;

        for (size_t i = 0; i < physmem_block_count(); i++) {
            const RAMBlock *rb = physmem_block(i);
            uint64_t lo = (MAX(rb->gpa, DEMO_LOAD_START) + 4095) & ~4095ull;

            if (rb->readonly) {
                continue;
            }
            for (uint64_t gpa = lo; gpa + 4096 <= rb->gpa + rb->size; gpa += 4096) {
                uint64_t *p = (uint64_t *)(rb->host + (gpa - rb->gpa));

                if (!load_wait_running(l)) {
                    return NULL;
                }
                for (int w = 0; w < 512; w++) {
                    p[w] = GUINT64_TO_LE(pass);
                }
                load_status(pass, ++index, pages);
            }
        }
    }
}

static void load_runstate_changed(void *opaque, bool running, RunState state)
{
    DemoLoad *l = load;

    if (!l) {
        return;
    }
    g_mutex_lock(&l->lock);
    atomic_store(&l->run, running);
    g_cond_broadcast(&l->cond);
    /* A stop is a stop: return only once the thread stands between pages. */
    while (!running && !l->parked) {
        g_cond_wait(&l->cond, &l->lock);
    }
    g_mutex_unlock(&l->lock);
}

/* The main loop may start the guest without a transition; look once it runs. */
static gboolean load_first_look(gpointer opaque)
{
    load_runstate_changed(NULL, runstate_is_running(), runstate_get());
    return G_SOURCE_REMOVE;
}

bool demo_write_load_start(Error **errp)
{
    if (!physmem_host_ptr(DEMO_LOAD_STATUS, 4096) || load_pages() == 0) {
        error_setg(errp, "-demo-write-load needs RAM above 0x%llx",
                   (unsigned long long)DEMO_LOAD_START);
        return false;
    }
    load = g_new0(DemoLoad, 1);
    g_mutex_init(&load->lock);
    g_cond_init(&load->cond);
    atomic_store(&load->run, runstate_is_running());
    if (!handler_added) {
        runstate_add_change_handler(load_runstate_changed, NULL);
        handler_added = true;
    }
    load->thread = g_thread_new("demo-write-load", load_thread, load);
    g_idle_add(load_first_look, NULL);
    return true;
}

void demo_write_load_stop(void)
{
    if (!load) {
        return;
    }
    g_mutex_lock(&load->lock);
    load->quit = true;
    atomic_store(&load->run, false);
    g_cond_broadcast(&load->cond);
    g_mutex_unlock(&load->lock);
    g_thread_join(load->thread);
    g_mutex_clear(&load->lock);
    g_cond_clear(&load->cond);
    g_clear_pointer(&load, g_free);
}
