/*
 * sd_notify(3) and sd_listen_fds(3) for xmppd, or nothing at all when
 * built without libsystemd. NOTIFY_SOCKET stays in the environment (the
 * status changes all through the daemon's life); LISTEN_FDS and
 * LISTEN_PID are removed once read, so a password_command does not
 * believe it was given sockets.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "build-config.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "proto/alloc.h"

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define STATUS_MAX 256

#if HAVE_SYSTEMD
static void send_state(const char *state)
{
	int rc = sd_notify(0, state);
	if (rc < 0) {
		log_debug("sd_notify %s: %s", state, strerror(-rc));
	}
}
#else
static void send_state(const char *state)
{
}
#endif

void notify_ready(void)
{
	send_state("READY=1");
}

void notify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[64];
	/* MONOTONIC_USEC: what systemd 253+ asks of Type=notify-reload. */
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
		(uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
	send_state(msg);
}

/* len, or less so that s[0..len) does not end inside a UTF-8 sequence
 * (a truncated reason must not make STATUS= invalid UTF-8). */
static size_t utf8_boundary(const char *s, size_t len)
{
	size_t i = len;
	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
	}
	if (i == 0) {
		return len;
	}
	unsigned char lead = (unsigned char)s[i - 1];
	size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	return len - (i - 1) >= need ? len : i - 1;
}

/* Sends head (may be "") followed by STATUS=status, newlines and
 * control characters made spaces. */
static void send_status(const char *head, const char *status)
{
	char msg[32 + sizeof("STATUS=") + STATUS_MAX];
	size_t n = strlen(status);
	n = utf8_boundary(status, n < STATUS_MAX - 1 ? n : STATUS_MAX - 1);
	int at = snprintf(msg, 32, "%sSTATUS=", head);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)status[i];
		msg[(size_t)at + i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	msg[(size_t)at + n] = '\0';
	send_state(msg);
}

void notify_status(const char *status)
{
	send_status("", status);
}

static const char *get_string(json_t *ev, const char *key)
{
	return json_string_value(json_object_get(ev, key));
}

void notify_state_text(json_t *ev, char *out, size_t size)
{
	const char *state = get_string(ev, "state");
	const char *reason = get_string(ev, "reason");
	const char *jid = get_string(ev, "jid");
	json_t *retry = json_object_get(ev, "retry_in");
	if (state == NULL) {
		state = "unknown";
	}
	int n;
	if (strcmp(state, "online") == 0 && jid != NULL) {
		n = snprintf(out, size, "online as %s", jid);
	} else if (reason != NULL) {
		n = snprintf(out, size, "%s: %s", state, reason);
	} else {
		n = snprintf(out, size, "%s", state);
	}
	if (json_is_integer(retry) && n >= 0 && (size_t)n < size) {
		snprintf(out + n, size - (size_t)n, ", retry in %" JSON_INTEGER_FORMAT " s",
			json_integer_value(retry));
	}
}

void notify_state_sink(void *ud, const struct events_event *e)
{
	json_t *ev = e->ev;
	if (strcmp(e->name, "state") != 0 || ev == NULL) {
		return;
	}
	char text[STATUS_MAX];
	notify_state_text(ev, text, sizeof(text));
	const char *state = get_string(ev, "state");
	bool stopping = state != NULL && strcmp(state, "stopping") == 0;
	send_status(stopping ? "STOPPING=1\n" : "", text);
}

bool notify_state_wanted(void *ud, const char *name)
{
	return strcmp(name, "state") == 0;
}

#if HAVE_SYSTEMD
static void watchdog_cb(uv_timer_t *t)
{
	send_state("WATCHDOG=1");
}

bool notify_watchdog_start(uv_loop_t *loop, uv_timer_t *t)
{
	uint64_t usec = 0;
	int rc = sd_watchdog_enabled(0, &usec);
	if (rc < 0) {
		log_warnx("systemd watchdog: %s; not pinging it", strerror(-rc));
		return false;
	}
	if (rc == 0 || usec == 0) {
		return false;
	}
	uint64_t ms = usec / 2000;
	if (ms == 0) {
		ms = 1;
	}
	uv_timer_init(loop, t);
	uv_timer_start(t, watchdog_cb, ms, ms);
	uv_unref((uv_handle_t *)t);
	send_state("WATCHDOG=1");
	log_info("systemd watchdog: pinging every %" PRIu64 " ms", ms);
	return true;
}

int notify_listen_fd(int *fd, char **cause)
{
	int n = sd_listen_fds(1);
	if (n < 0) {
		*cause = xasprintf("socket activation: %s", strerror(-n));
		return -1;
	}
	if (n == 0) {
		return 0;
	}
	if (n > 1) {
		*cause = xasprintf("socket activation: %d sockets passed; xmppd "
			"serves exactly one (ListenStream= once)", n);
		return -1;
	}
	int rc = sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0);
	if (rc <= 0) {
		*cause = xasprintf("socket activation: the socket passed is not a "
			"listening AF_UNIX stream socket%s%s", rc < 0 ? ": " : "",
			rc < 0 ? strerror(-rc) : "");
		return -1;
	}
	*fd = SD_LISTEN_FDS_START;
	return 1;
}
#else
bool notify_watchdog_start(uv_loop_t *loop, uv_timer_t *t)
{
	return false;
}

int notify_listen_fd(int *fd, char **cause)
{
	return 0;
}
#endif
