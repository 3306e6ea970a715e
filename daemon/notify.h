/*
 * Telling systemd how the daemon is doing (sd_notify(3)): readiness, a
 * one-line status that follows the connection state, watchdog pings,
 * reload and stop; and the listening socket systemd may hand over
 * (sd_listen_fds(3)). Built without libsystemd, every call does nothing
 * and no socket is ever handed over.
 */
#ifndef XMPPD_DAEMON_NOTIFY_H
#define XMPPD_DAEMON_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* READY=1: the control socket is listening. */
void notify_ready(void);
/* RELOADING=1 (with MONOTONIC_USEC): a reload begins; READY=1 ends it. */
void notify_reloading(void);
/* STATUS=status, newlines and control characters made spaces. */
void notify_status(const char *status);

/* The STATUS= text for a "state" event ev (as daemon/xmppd.c publishes
 * it): "connecting", "online as JID", "offline: REASON, retry in N s",
 * "auth-failed: REASON"... Written to out, truncated to size. */
void notify_state_text(json_t *ev, char *out, size_t size);
/* An events sink (daemon/events.h) that mirrors "state" events into
 * STATUS=, with STOPPING=1 once the state is "stopping" (a signal or the
 * quit command); ud is only the sink's identity. */
struct events_event;
void notify_state_sink(void *ud, const struct events_event *e);
/* The sink's filter: "state" events only. */
bool notify_state_wanted(void *ud, const char *name);

/* If the service manager asked for watchdog pings, starts t on loop to
 * send WATCHDOG=1 at half the interval it gave and returns true. The
 * timer does not keep the loop alive; its memory must live until it is
 * closed (a uv_walk closing everything will do). */
bool notify_watchdog_start(uv_loop_t *loop, uv_timer_t *t);

/* The control socket systemd passed (socket activation): 1 with *fd set
 * when exactly one listening AF_UNIX stream socket was passed, 0 when
 * none was, -1 with *cause set (caller frees) when what was passed
 * cannot serve. */
int notify_listen_fd(int *fd, char **cause);

#endif
