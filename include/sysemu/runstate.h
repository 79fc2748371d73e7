/* Run state of the virtual machine: running or paused, and who is notified. */
#ifndef SYSEMU_RUNSTATE_H
#define SYSEMU_RUNSTATE_H

#include <glib.h>
#include <stdbool.h>

#include "qapi-types.h"   /* RunState, generated from qapi/run-state.json */

RunState runstate_get(void);
bool runstate_is_running(void);

/*
 * Stops the guest (no-op when not running): sets state, notifies the
 * machine so it stops changing guest memory, emits STOP.
 */
void vm_stop(RunState state);
/* Starts the guest when it is not running; emits RESUME. */
void vm_start(void);

/* Called on every transition; the machine uses it to start/stop its guest activity. */
typedef void VMChangeStateHandler(void *opaque, bool running, RunState state);
void runstate_add_change_handler(VMChangeStateHandler *cb, void *opaque);

/*
 * True while a dump is active (implemented by dump/dump.c); stop and cont
 * refuse with "There is a dump in process, please wait.".
 */
bool dump_in_progress(void);

/*
 * Shutdown (system/runstate.c). qemu_system_shutdown_request emits SHUTDOWN
 * {guest: false, reason: cause} at once (so it precedes quit's reply, as in
 * QEMU) and makes the main loop given to runstate_set_main_loop return.
 */
void runstate_set_main_loop(GMainLoop *loop);
void qemu_system_shutdown_request(ShutdownCause cause);
bool runstate_shutdown_requested(void);

#endif
