/* A QMP client for unit tests that run the monitor in-process on their own main context. */
#ifndef TESTS_UNIT_QMP_UNIT_CLIENT_H
#define TESTS_UNIT_QMP_UNIT_CLIENT_H

#include <glib.h>

typedef struct QmpUnitClient {
    int fd;
    GString *in;
} QmpUnitClient;

/* Connects to a unix socket; the greeting is left unread. */
QmpUnitClient qmp_unit_client_connect(const char *path);
/*
 * Iterates the default main context (the monitor runs in this process)
 * until a whole line has arrived; fails the test after about 10 s.
 */
char *qmp_unit_client_line(QmpUnitClient *c);
/* Sends req, with fd passed over SCM_RIGHTS when fd >= 0. */
void qmp_unit_client_send(QmpUnitClient *c, const char *req, int fd);
/* Sends qmp_capabilities and checks the empty return. */
void qmp_unit_client_negotiate(QmpUnitClient *c);
/* Disconnects and lets the monitor see it. */
void qmp_unit_client_close(QmpUnitClient *c);

#endif
