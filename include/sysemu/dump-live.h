/* Live dumps: guest RAM write-protected with userfaultfd, old pages copied on write. */
#ifndef SYSEMU_DUMP_LIVE_H
#define SYSEMU_DUMP_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qapi/error.h"

/*
 * The snapshot of a live dump (docs/dump-module.md, "Live dumps"). While it
 * exists, the host memory of the dumped blocks is write-protected: the first
 * write to a page the dump has not passed yet stops the writing thread, a
 * handler thread copies the page's old contents into a bounded buffer and
 * lifts the protection of that page, and the writer continues. The dump
 * reads a page from its copy when there is one, else from RAM (which still
 * holds the old contents, as the page is protected), always under the
 * snapshot's lock, so a page cannot change between the check and the read.
 *
 * When the buffer is full the handler waits for the dump to release pages
 * (dump_live_release), so the writer waits too: memory stays bounded and no
 * page is lost. The dump never waits for a writer.
 */
typedef struct DumpLive DumpLive;

typedef struct DumpGuestBlock DumpGuestBlock;

/*
 * Registers and write-protects the host memory of blocks[0..num) (host
 * pages, merged where they touch). Fails, with nothing protected, when the
 * kernel or the memory type refuses, naming why. Main thread, guest paused.
 */
DumpLive *dump_live_start(const DumpGuestBlock *blocks, size_t num, Error **errp);

/* len bytes at host (inside the protected memory) as they were at the start. */
void dump_live_read(DumpLive *l, const uint8_t *host, void *buf, size_t len);

/*
 * The dump will not read [host, host+len) again: the host pages entirely
 * inside it lose their protection and their copies. Pages only partly
 * inside stay protected (a later release, or the end, lifts them), so a
 * caller may release the exact byte ranges it has read.
 */
void dump_live_release(DumpLive *l, const uint8_t *host, size_t len);

/*
 * Lifts every protection, wakes every waiting writer and stops the handler.
 * Any thread, more than once; the first call does the work. Reads after it
 * see RAM as it is now.
 */
void dump_live_end(DumpLive *l);

/* dump_live_end, then frees everything (main thread). NULL is accepted. */
void dump_live_free(DumpLive *l);

/*
 * Copy-buffer size in host pages: GUESTDUMP_LIVE_COPY_PAGES when set
 * (1 .. 2^22), else 16384 (64 MiB of 4 KiB pages).
 */
size_t dump_live_copy_pages(void);

#endif
