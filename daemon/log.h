/*
 * Logging to stderr with levels and file:line. A line whose level is off is
 * never formatted (the macros test the level first). Under systemd
 * (JOURNAL_STREAM set) lines carry sd-daemon "<N>" priority prefixes instead
 * of a timestamp. Trace categories can be switched at run time.
 */
#ifndef XMPPD_DAEMON_LOG_H
#define XMPPD_DAEMON_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

enum log_trace {
	TRACE_XML = 1 << 0,	/* the XML stream, SASL redacted */
	TRACE_TLS = 1 << 1,
	TRACE_IPC = 1 << 2,
	TRACE_STREAM = 1 << 3,
};

extern enum log_level log_max_level;
extern unsigned log_traces;

void log_init(enum log_level level, unsigned traces);
/* Parses "error", "warn", "info", "debug"; false if unknown. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
void log_write(enum log_level level, const char *file, int line, bool with_errno,
	const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_enabled(lvl) ((lvl) <= log_max_level)
#define LOGF(lvl, err, ...) do { \
		if (log_enabled(lvl)) { \
			log_write((lvl), __FILE__, __LINE__, (err), __VA_ARGS__); \
		} \
	} while (0)

#define log_error(...) LOGF(LOG_ERROR, false, __VA_ARGS__)
#define log_warn(...) LOGF(LOG_WARN, true, __VA_ARGS__)	/* appends strerror(errno) */
#define log_warnx(...) LOGF(LOG_WARN, false, __VA_ARGS__)
#define log_info(...) LOGF(LOG_INFO, false, __VA_ARGS__)
#define log_debug(...) LOGF(LOG_DEBUG, false, __VA_ARGS__)
#define log_tracing(cat) ((log_traces & (cat)) != 0)

/* Logs a failed invariant and evaluates to false (sway_assert). */
#define xassert(cond, ...) ((cond) ? true : \
	(log_write(LOG_ERROR, __FILE__, __LINE__, false, __VA_ARGS__), false))

#endif
