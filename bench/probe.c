/*
 * probe: the control-socket side of the benchmarks (bench/README), so that
 * bench/run measures xmppd and not a Python reader.
 *
 *   probe SOCKET sub K N [lat] [-w PID]
 *       K clients subscribe to "message" events; prints "subscribed" once
 *       all replies came, then reads until each client has N more lines and
 *       prints "done" with the CLOCK_MONOTONIC times (ns) of the first and
 *       last line.  With "lat", each body of the first client that starts
 *       "t=NANOSECONDS " (the blaster's send time) gives one latency
 *       sample; p50, p99 and max go into "done".  With -w, the peak
 *       RssAnon (KiB) of PID, sampled every 20 ms while reading.
 *   probe SOCKET send N R B
 *       One client sends N "send" commands at R a second, each body "t=NS "
 *       padded to B bytes with NS taken just before the write (the blaster
 *       in sink mode measures the latency); prints "done" when every reply
 *       came.
 *
 * Reports on stdout, one JSON object a line; "error" with a reason if
 * xmppd closes or drops a client.  Exit status 0 when done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ (256 * 1024)
#define TIMEOUT_NS (300 * 1000000000ull)
#define SAMPLE_NS (20 * 1000000ull)

struct client {
	int fd;
	char *buf;
	size_t len;
	uint64_t lines;
};

static uint64_t *lat;
static size_t nlat;
static size_t maxlat;
static long watch_pid;
static long peak_anon;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void fail(const char *why)
{
	report("{\"event\":\"error\",\"what\":\"%s\"}", why);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL) {
		fail("out of memory");
	}
	return p;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, s, n);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			fail("write failed");
		}
		s += k;
		n -= (size_t)k;
	}
}

static int connect_to(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (fd < 0 || strlen(path) >= sizeof(a.sun_path)) {
		fail("socket");
	}
	strcpy(a.sun_path, path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		fail("connect");
	}
	return fd;
}

/* Reads one line at a time, byte by byte: only for the short greeting and
 * the subscribe reply, before the events flow. */
static void read_line(int fd, char *line, size_t size)
{
	size_t n = 0;
	for (;;) {
		char ch;
		ssize_t k = read(fd, &ch, 1);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			fail("closed before the reply");
		}
		if (ch == '\n') {
			break;
		}
		if (n + 1 < size) {
			line[n++] = ch;
		}
	}
	line[n] = '\0';
}

static void wait_reply(int fd, const char *prefix)
{
	char line[4096];
	do {
		read_line(fd, line, sizeof(line));
	} while (strncmp(line, prefix, strlen(prefix)) != 0);
	if (strstr(line, "\"ok\":true") == NULL) {
		fail("refused");
	}
}

static void sample_anon(void)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%ld/status", watch_pid);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		long kib;
		if (sscanf(line, "RssAnon: %ld", &kib) == 1 && kib > peak_anon) {
			peak_anon = kib;
		}
	}
	fclose(f);
}

/* ---- sub ---- */

static void take_samples(const char *line, const char *end, uint64_t t)
{
	static const char key[] = "\"body\":\"t=";
	if (line == NULL || nlat == maxlat) {
		return;
	}
	const char *p = memmem(line, (size_t)(end - line), key, sizeof(key) - 1);
	if (p == NULL) {
		return;
	}
	uint64_t sent = strtoull(p + sizeof(key) - 1, NULL, 10);
	lat[nlat++] = t >= sent ? t - sent : 0;
}

static void check_line(const char *line, const char *end)
{
	size_t n = (size_t)(end - line);
	if (line == NULL) {
		return;	/* never; tells GCC's -Wnonnull under UBSan */
	}
	if (memmem(line, n, "\"dropped\"", 9) != NULL ||
			memmem(line, n, "too far behind", 14) != NULL) {
		fail("dropped");
	}
}

/* Reads what c has, counts its complete lines; false at end of file. */
static bool read_client(struct client *c, bool sampled)
{
	ssize_t k = read(c->fd, c->buf + c->len, BUFSZ - c->len);
	if (k < 0 && (errno == EINTR || errno == EAGAIN)) {
		return true;
	}
	if (k <= 0) {
		return false;
	}
	uint64_t t = now_ns();
	c->len += (size_t)k;
	char *line = c->buf, *end = c->buf + c->len, *nl;
	while ((nl = memchr(line, '\n', (size_t)(end - line))) != NULL) {
		check_line(line, nl);
		if (sampled) {
			take_samples(line, nl, t);
		}
		c->lines++;
		line = nl + 1;
	}
	c->len = (size_t)(end - line);
	if (c->len == BUFSZ) {
		c->len = 0;	/* a line longer than the buffer: not ours */
	}
	memmove(c->buf, line, c->len);
	return true;
}

static void subscribe(struct client *c, const char *path)
{
	static const char req[] =
		"{\"cmd\":\"subscribe\",\"id\":1,\"events\":[\"message\"]}\n";
	c->fd = connect_to(path);
	c->buf = xmalloc(BUFSZ);
	c->len = 0;
	c->lines = 0;
	write_all(c->fd, req, sizeof(req) - 1);
	wait_reply(c->fd, "{\"id\":1,");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(double p)
{
	if (nlat == 0) {
		return 0;
	}
	size_t i = (size_t)(p * (double)nlat + 0.999999);
	return lat[i == 0 ? 0 : i - 1];
}

static bool all_done(const struct client *cs, int k, uint64_t n)
{
	for (int i = 0; i < k; i++) {
		if (cs[i].lines < n) {
			return false;
		}
	}
	return true;
}

static void poll_clients(struct client *cs, struct pollfd *p, int k,
	uint64_t n, bool with_lat, uint64_t *first, uint64_t *last)
{
	if (poll(p, (nfds_t)k, 1000) < 0 && errno != EINTR) {
		fail("poll");
	}
	for (int i = 0; i < k; i++) {
		if (p[i].revents == 0) {
			continue;
		}
		if (!read_client(&cs[i], with_lat && i == 0)) {
			fail("xmppd closed a subscriber");
		}
		*last = now_ns();
		if (*first == 0) {
			*first = *last;
		}
		if (cs[i].lines >= n) {
			p[i].fd = -1;
		}
	}
}

static int run_sub(const char *path, int k, uint64_t n, bool with_lat)
{
	struct client *cs = xmalloc(sizeof(*cs) * (size_t)k);
	struct pollfd *p = xmalloc(sizeof(*p) * (size_t)k);
	maxlat = with_lat ? n : 0;
	lat = xmalloc(sizeof(*lat) * (maxlat + 1));
	for (int i = 0; i < k; i++) {
		subscribe(&cs[i], path);
		p[i] = (struct pollfd){ .fd = cs[i].fd, .events = POLLIN };
	}
	report("{\"event\":\"subscribed\",\"k\":%d}", k);
	uint64_t first = 0, last = 0, sampled = 0, deadline = now_ns() + TIMEOUT_NS;
	while (!all_done(cs, k, n)) {
		if (now_ns() > deadline) {
			fail("timeout");
		}
		if (watch_pid > 0 && now_ns() - sampled > SAMPLE_NS) {
			sampled = now_ns();
			sample_anon();
		}
		poll_clients(cs, p, k, n, with_lat, &first, &last);
	}
	qsort(lat, nlat, sizeof(lat[0]), cmp_u64);
	report("{\"event\":\"done\",\"n\":%" PRIu64 ",\"k\":%d,\"first_ns\":%"
		PRIu64 ",\"last_ns\":%" PRIu64 ",\"samples\":%zu,\"p50_ns\":%" PRIu64
		",\"p99_ns\":%" PRIu64 ",\"max_ns\":%" PRIu64
		",\"peak_anon_kib\":%ld}", n, k, first, last, nlat, pct(0.5),
		pct(0.99), nlat ? lat[nlat - 1] : 0, peak_anon);
	return 0;
}

/* ---- send ---- */

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
		.tv_nsec = (long)(t % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
			EINTR) {
	}
}

/* Reads the replies that are there (all of them with wait); counts lines. */
static void read_replies(struct client *c, bool wait)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	while (poll(&p, 1, wait ? 1000 : 0) > 0) {
		if (!read_client(c, false)) {
			fail("xmppd closed the sender");
		}
		if (wait) {
			return;
		}
	}
}

static int run_send(const char *path, uint64_t n, uint64_t rate, size_t body)
{
	struct client c = { .fd = connect_to(path), .buf = xmalloc(BUFSZ) };
	char line[4096], pad[2048];
	size_t padn = body > 23 ? body - 23 : 0;
	padn = padn < sizeof(pad) - 1 ? padn : sizeof(pad) - 1;
	memset(pad, 'x', padn);
	pad[padn] = '\0';
	read_line(c.fd, line, sizeof(line));	/* hello */
	uint64_t next = now_ns(), first = next;
	for (uint64_t i = 0; i < n; i++) {
		sleep_until(next);
		next += 1000000000u / rate;
		int len = snprintf(line, sizeof(line), "{\"cmd\":\"send\",\"to\":"
			"\"bob@localhost\",\"body\":\"t=%" PRIu64 " %s\"}\n", now_ns(),
			pad);
		write_all(c.fd, line, (size_t)len);
		read_replies(&c, false);
	}
	uint64_t deadline = now_ns() + TIMEOUT_NS;
	while (c.lines < n && now_ns() < deadline) {
		read_replies(&c, true);
	}
	report("{\"event\":\"done\",\"n\":%" PRIu64 ",\"replies\":%" PRIu64
		",\"first_ns\":%" PRIu64 ",\"last_ns\":%" PRIu64 "}", n, c.lines,
		first, now_ns());
	return c.lines >= n ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: probe SOCKET sub K N [lat] [-w PID]\n"
		"       probe SOCKET send N RATE BODY-BYTES\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[2], "sub") == 0) {
		bool with_lat = false;
		for (int i = 5; i < argc; i++) {
			if (strcmp(argv[i], "lat") == 0) {
				with_lat = true;
			} else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
				watch_pid = atol(argv[++i]);
			} else {
				usage();
			}
		}
		int k = atoi(argv[3]);
		if (k < 1) {
			usage();
		}
		return run_sub(argv[1], k, strtoull(argv[4], NULL, 10), with_lat);
	}
	if (argc == 6 && strcmp(argv[2], "send") == 0) {
		uint64_t rate = strtoull(argv[4], NULL, 10);
		if (rate == 0) {
			usage();
		}
		return run_send(argv[1], strtoull(argv[3], NULL, 10), rate,
			(size_t)strtoull(argv[5], NULL, 10));
	}
	usage();
}
