#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"

enum log_level log_max_level = LOG_INFO;
unsigned log_traces;

static bool journal;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

/* sd-daemon(3) priorities: err, warning, info, debug. */
static const int level_prio[] = {
	[LOG_ERROR] = 3,
	[LOG_WARN] = 4,
	[LOG_INFO] = 6,
	[LOG_DEBUG] = 7,
};

void log_init(enum log_level level, unsigned traces)
{
	log_max_level = level;
	log_traces = traces;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

bool log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

void log_write(enum log_level level, const char *file, int line, bool with_errno,
	const char *fmt, ...)
{
	int saved = errno;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	char tail[256] = "";
	if (with_errno && saved != 0) {
		snprintf(tail, sizeof(tail), ": %s", strerror(saved));
	}
	if (journal) {
		fprintf(stderr, "<%d>[%s:%d] %s%s\n", level_prio[level], base, line,
			msg, tail);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s [%s:%d] %s%s\n",
			tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			level_names[level], base, line, msg, tail);
	}
	errno = saved;
}
