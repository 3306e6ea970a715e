/*
 * A stand-in for the daemon core (daemon/xmppd.h) used only by
 * test-ipc: it records what the control socket asks of it and lets the
 * test decide the core's state, make the next call fail, and answer or
 * time out iq requests.
 */
#ifndef XMPPD_TESTS_IPC_STUB_H
#define XMPPD_TESTS_IPC_STUB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/xmppd.h"
#include "proto/xml.h"

void stub_set_state(struct xmppd *x, enum xmppd_state st);
void stub_set_jid(struct xmppd *x, const char *jid);
/* The next message_send / presence_send / xmppd_send_raw / iq_request
 * fails with this condition and text. */
void stub_fail_next(struct xmppd *x, const char *condition, const char *text);
/* What the core was asked to do, oldest first: objects with "kind"
 * ("message", "presence", "raw", "iq") and the arguments (borrowed). */
json_t *stub_sent(struct xmppd *x);
bool stub_quit_called(const struct xmppd *x);
int stub_reconnects(const struct xmppd *x);
/* iq requests not yet answered. */
size_t stub_iq_pending(const struct xmppd *x);
/* Answers the oldest pending iq with reply (borrowed; its id is set to
 * the request's); false if none is pending. */
bool stub_iq_answer(struct xmppd *x, struct xml *reply);
/* Fails the oldest pending iq with condition, as a lost connection does. */
bool stub_iq_fail(struct xmppd *x, const char *condition, const char *text);

#endif
