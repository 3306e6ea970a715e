/*
 * The command table of the control socket (DESIGN.md section 4): one
 * handler per command name, arguments checked in one place.
 */
#ifndef XMPPD_IPC_COMMANDS_H
#define XMPPD_IPC_COMMANDS_H

#include <jansson.h>

struct ipc_client;

/* Runs one decoded request (borrowed) for c; the reply goes through
 * c's reply queue, now or when the command completes. */
void commands_run(struct ipc_client *c, json_t *req);

#endif
