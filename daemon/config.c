/*
 * The configuration file.
 *
 * keys[] is the only list of keys: each row names its section and key,
 * how the value is parsed, its default (in the file's own syntax, parsed
 * by the same code as the file), the field of struct config it fills and
 * an optional check, the way redis lists its directives in
 * static_configs[]. config_init, config_load and config_finish all walk
 * it; adding a key is adding a row (and a line in xmppd.conf.example and
 * xmppd.conf(5)).
 *
 * inih does the INI syntax. Debian builds it without line numbers in the
 * handler, so the file is read whole into memory (bounded) and handed to
 * ini_parse_stream through a reader that returns one line per call and
 * counts them; the reader also rejects NUL bytes, overlong lines and
 * unknown [sections] at the line where they appear.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/config.h"
#include "proto/alloc.h"
#include "proto/jid.h"

extern char **environ;

#define FILE_MAX (1024 * 1024)		/* bytes in a configuration file */
#define LINE_MAX_BYTES 4096		/* bytes in one line, newline excluded */
#define SECRET_MAX 4096			/* bytes in a password */
#define SECRET_READ (SECRET_MAX + 2)	/* and its "\r\n" */
#define DRAIN_MAX (1024 * 1024)		/* command output read past SECRET_MAX */

#define KIB ((long long)1024)
#define MIB (KIB * KIB)
#define GIB (MIB * KIB)

enum key_type {
	KEY_STRING,	/* char *, any text */
	KEY_SECRET,	/* char *, wiped when freed, never echoed */
	KEY_PATH,	/* char *, "~/" expanded, relative to the file's dir */
	KEY_INT,	/* int in [min, max] */
	KEY_UINT,	/* unsigned in [min, max] */
	KEY_SIZE,	/* size_t in [min, max], with a K/M/G suffix */
	KEY_BOOL,	/* bool: yes/no, true/false, on/off, 1/0 */
	KEY_CHOICE,	/* int: index of the value in choices */
	KEY_WORD,	/* char *: one of choices; choices[0] stores NULL */
};

/* Checks (and may rewrite) a string value; returns NULL or what is wrong. */
typedef char *(*key_check_cb)(char **value);

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	const char *def;		/* default, file syntax; NULL: unset/0 */
	size_t offset;			/* of the field in struct config */
	key_check_cb check;
	long long min, max;		/* KEY_INT, KEY_UINT, KEY_SIZE */
	const char *const *choices;	/* KEY_CHOICE, KEY_WORD; NULL-ended */
	bool password_source;		/* one of password, _file, _command */
};

static char *check_jid(char **value);
static char *check_resource(char **value);
static char *check_host(char **value);
static char *check_readable(char **value);
static char *check_pin(char **value);
static char *check_resolver(char **value);

static const char *const tls_modes[] = {
	[CONFIG_TLS_STARTTLS] = "starttls",
	[CONFIG_TLS_DIRECT] = "direct",
	[CONFIG_TLS_NONE] = "none",
	NULL,
};

static const char *const shows[] = {
	"available", "away", "chat", "dnd", "xa", NULL,
};

static const char *const log_levels[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
	NULL,
};

#define FIELD(f) offsetof(struct config, f)

static const struct key keys[] = {
	{ "account", "jid", KEY_STRING, NULL, FIELD(jid), .check = check_jid },
	{ "account", "password", KEY_SECRET, NULL, FIELD(password),
		.password_source = true },
	{ "account", "password_file", KEY_PATH, NULL, FIELD(password_file),
		.password_source = true },
	{ "account", "password_command", KEY_STRING, NULL,
		FIELD(password_command), .password_source = true },
	{ "account", "resource", KEY_STRING, NULL, FIELD(resource),
		.check = check_resource },
	{ "server", "host", KEY_STRING, NULL, FIELD(host), .check = check_host },
	{ "server", "port", KEY_INT, NULL, FIELD(port), .min = 1, .max = 65535 },
	{ "server", "tls", KEY_CHOICE, "starttls", FIELD(tls),
		.choices = tls_modes },
	{ "server", "ca_file", KEY_PATH, NULL, FIELD(ca_file),
		.check = check_readable },
	{ "server", "tls_priority", KEY_STRING, NULL, FIELD(tls_priority),
		.check = NULL },
	{ "server", "pin", KEY_STRING, NULL, FIELD(pin), .check = check_pin },
	{ "server", "resolver", KEY_STRING, NULL, FIELD(resolver),
		.check = check_resolver },
	{ "server", "connect_timeout", KEY_UINT, "10", FIELD(connect_timeout),
		.min = 1, .max = 300 },
	{ "server", "keepalive", KEY_UINT, "60", FIELD(keepalive),
		.min = 5, .max = 3600 },
	{ "server", "keepalive_timeout", KEY_UINT, "20", FIELD(keepalive_timeout),
		.min = 1, .max = 600 },
	{ "server", "reconnect_max", KEY_UINT, "300", FIELD(reconnect_max),
		.min = 1, .max = 86400 },
	{ "server", "stream_management", KEY_BOOL, "yes",
		FIELD(stream_management), .check = NULL },
	{ "presence", "show", KEY_WORD, "available", FIELD(show),
		.choices = shows },
	{ "presence", "status", KEY_STRING, NULL, FIELD(status), .check = NULL },
	{ "presence", "priority", KEY_INT, "0", FIELD(priority),
		.min = -128, .max = 127 },
	{ "control", "socket", KEY_PATH, NULL, FIELD(socket), .check = NULL },
	{ "control", "max_line", KEY_SIZE, "1M", FIELD(max_line),
		.min = 1 * KIB, .max = 64 * MIB },
	{ "control", "max_output", KEY_SIZE, "4M", FIELD(max_output),
		.min = 64 * KIB, .max = 1 * GIB },
	{ "log", "level", KEY_CHOICE, "info", FIELD(log_level),
		.choices = log_levels },
	{ "log", "xml", KEY_BOOL, "no", FIELD(log_xml), .check = NULL },
	{ "limits", "max_stanza", KEY_SIZE, "1M", FIELD(max_stanza),
		.min = 4 * KIB, .max = 64 * MIB },
	{ "limits", "iq_timeout", KEY_UINT, "30", FIELD(iq_timeout),
		.min = 1, .max = 3600 },
	{ "delivery", "max_age", KEY_UINT, "3600", FIELD(max_age),
		.min = 0, .max = 100 * 365 * 86400U },
	{ "delivery", "queue", KEY_UINT, "1000", FIELD(queue),
		.min = 1, .max = 1000000 },
	{ "muc", "self_ping", KEY_UINT, "300", FIELD(muc_self_ping),
		.min = 0, .max = 86400 },
	{ "store", "dir", KEY_PATH, NULL, FIELD(store_dir), .check = NULL },
	{ "store", "path", KEY_PATH, NULL, FIELD(store_path), .check = NULL },
	{ "store", "enabled", KEY_BOOL, "yes", FIELD(store_enabled), .check = NULL },
	{ "store", "fsync", KEY_BOOL, "yes", FIELD(store_fsync), .check = NULL },
	{ "store", "retention", KEY_UINT, "365", FIELD(store_retention),
		.min = 0, .max = 100 * 365 },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* One config_load in progress. */
struct load {
	struct config *c;
	const char *path;
	char *dir;			/* of path, for relative paths */
	char *data;			/* the whole file, wiped when freed */
	size_t len;
	size_t pos;			/* where the reader goes on */
	int lineno;			/* of the line last handed to inih */
	size_t line_start, line_len;	/* that line, within data */
	int seen[NKEYS];		/* line where each key was set, or 0 */
	char *error;			/* the first "FILE:LINE: ..." */
};

static void *field_of(struct config *c, const struct key *k)
{
	return (char *)c + k->offset;
}

static bool is_string_type(enum key_type t)
{
	return t == KEY_STRING || t == KEY_SECRET || t == KEY_PATH ||
		t == KEY_WORD;
}

static void free_value(const struct key *k, char *s)
{
	if (k->type == KEY_SECRET) {
		freezero_str(s);
	} else {
		free(s);
	}
}

static void store_string(struct config *c, const struct key *k, char *s)
{
	char **dst = field_of(c, k);
	free_value(k, *dst);
	*dst = s;
}

/* Text as it may be shown in a message: short and printable. */
static char *printable(const char *s)
{
	char out[68];
	size_t n = 0;
	for (; *s != '\0' && n < 64; s++) {
		unsigned char ch = (unsigned char)*s;
		out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
	return xasprintf("%s%s", out, *s != '\0' ? "..." : "");
}

/* A value as it may be shown in a message: 'quoted', short, printable. */
static char *quote(const char *s)
{
	char *p = printable(s);
	char *q = xasprintf("'%s'", p);
	free(p);
	return q;
}

/* Numbers. */

static bool parse_ll(const char *s, long long *out)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	if (!isdigit((unsigned char)digits[0])) {
		return false;
	}
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		return false;
	}
	*out = v;
	return true;
}

static long long size_unit(char ch)
{
	switch (tolower((unsigned char)ch)) {
	case 'k':
		return KIB;
	case 'm':
		return MIB;
	case 'g':
		return GIB;
	default:
		return 0;
	}
}

/* Bytes, or kibibytes and so on with a K, M or G suffix. */
static bool parse_size(const char *s, long long *out)
{
	if (!isdigit((unsigned char)s[0])) {
		return false;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || v > (unsigned long long)LLONG_MAX) {
		return false;
	}
	long long unit = 1;
	if (*end != '\0') {
		unit = size_unit(*end++);
	}
	if (unit == 0 || *end != '\0' ||
		v > (unsigned long long)(LLONG_MAX / unit)) {
		return false;
	}
	*out = (long long)v * unit;
	return true;
}

/* "4K", "64M" or plain bytes, for messages. */
static char *size_name(long long v)
{
	if (v >= GIB && v % GIB == 0) {
		return xasprintf("%lldG", v / GIB);
	}
	if (v >= MIB && v % MIB == 0) {
		return xasprintf("%lldM", v / MIB);
	}
	if (v >= KIB && v % KIB == 0) {
		return xasprintf("%lldK", v / KIB);
	}
	return xasprintf("%lld", v);
}

static char *set_number(struct config *c, const struct key *k, const char *v)
{
	long long n;
	bool ok = k->type == KEY_SIZE ? parse_size(v, &n) : parse_ll(v, &n);
	if (!ok || n < k->min || n > k->max) {
		if (k->type != KEY_SIZE) {
			return xasprintf("not a number between %lld and %lld",
				k->min, k->max);
		}
		char *lo = size_name(k->min), *hi = size_name(k->max);
		char *err = xasprintf("not a size between %s and %s", lo, hi);
		free(lo);
		free(hi);
		return err;
	}
	void *dst = field_of(c, k);
	if (k->type == KEY_INT) {
		*(int *)dst = (int)n;
	} else if (k->type == KEY_UINT) {
		*(unsigned *)dst = (unsigned)n;
	} else {
		*(size_t *)dst = (size_t)n;
	}
	return NULL;
}

/* Words. */

static char *choices_error(const char *const *choices)
{
	size_t n = 0;
	for (const char *const *p = choices; *p != NULL; p++) {
		n += strlen(*p) + 2;
	}
	char *s = xmalloc(n + sizeof("not one of "));
	strcpy(s, "not one of ");
	for (const char *const *p = choices; *p != NULL; p++) {
		strcat(s, *p);
		if (p[1] != NULL) {
			strcat(s, ", ");
		}
	}
	return s;
}

static char *set_choice(struct config *c, const struct key *k, const char *v)
{
	for (int i = 0; k->choices[i] != NULL; i++) {
		if (strcmp(v, k->choices[i]) != 0) {
			continue;
		}
		if (k->type == KEY_CHOICE) {
			/* enum fields: int or unsigned int, either may be
			 * written through int (C11 6.5p7). */
			*(int *)field_of(c, k) = i;
		} else {
			store_string(c, k, i == 0 ? NULL : xstrdup(v));
		}
		return NULL;
	}
	return choices_error(k->choices);
}

static char *set_bool(struct config *c, const struct key *k, const char *v)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	bool *dst = field_of(c, k);
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*dst = true;
			return NULL;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*dst = false;
			return NULL;
		}
	}
	return xstrdup("not yes or no");
}

/* Strings and paths. */

/* "~/x" from $HOME, "x" relative to dir (the config file's directory). */
static char *resolve_path(const char *v, const char *dir, char **err)
{
	if (strncmp(v, "~/", 2) == 0) {
		const char *home = getenv("HOME");
		if (home == NULL || home[0] == '\0') {
			*err = xstrdup("'~' used but HOME is not set");
			return NULL;
		}
		return xasprintf("%s/%s", home, v + 2);
	}
	if (v[0] == '/' || dir == NULL || strcmp(dir, ".") == 0) {
		return xstrdup(v);
	}
	return xasprintf("%s/%s", dir, v);
}

static char *set_string(struct config *c, const struct key *k, const char *v,
	const char *dir)
{
	char *err = NULL;
	char *s = k->type == KEY_PATH ? resolve_path(v, dir, &err) : xstrdup(v);
	if (s == NULL) {
		return err;
	}
	if (k->check != NULL && (err = k->check(&s)) != NULL) {
		free_value(k, s);
		return err;
	}
	store_string(c, k, s);
	return NULL;
}

/* Parses v into k's field of c; returns NULL or what is wrong with v. */
static char *key_set(struct config *c, const struct key *k, const char *v,
	const char *dir)
{
	switch (k->type) {
	case KEY_STRING:
	case KEY_SECRET:
	case KEY_PATH:
		return set_string(c, k, v, dir);
	case KEY_INT:
	case KEY_UINT:
	case KEY_SIZE:
		return set_number(c, k, v);
	case KEY_BOOL:
		return set_bool(c, k, v);
	case KEY_CHOICE:
	case KEY_WORD:
		return set_choice(c, k, v);
	}
	return xstrdup("unknown key type");
}

/* Checks. */

static char *check_jid(char **value)
{
	const char *v = *value;
	if (strchr(v, '/') != NULL) {
		return xstrdup("must be a bare JID (set the resource with "
			"resource =)");
	}
	if (strchr(v, '@') == NULL) {
		return xstrdup("not an account JID (user@domain)");
	}
	const char *why = "invalid";
	char *prepped = jid_prep(v, true, &why);
	if (prepped == NULL) {
		return xasprintf("not a valid JID (%s)", why);
	}
	free(*value);
	*value = prepped;
	return NULL;
}

/* A resourcepart is prepared as part of a throwaway full JID. */
static char *check_resource(char **value)
{
	char *full = xasprintf("user@example.org/%s", *value);
	const char *why = "invalid";
	char *prepped = jid_prep(full, false, &why);
	free(full);
	const char *slash = prepped ? strchr(prepped, '/') : NULL;
	if (slash == NULL) {
		free(prepped);
		return xasprintf("not a valid resource (%s)", why);
	}
	free(*value);
	*value = xstrdup(slash + 1);
	free(prepped);
	return NULL;
}

static char *check_host(char **value)
{
	for (const char *p = *value; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch <= ' ' || ch == 0x7f || ch == '/') {
			return xstrdup("not a host name or address");
		}
	}
	return NULL;
}

/* "sha256/" and the base64 of a 32-byte SHA-256 digest of the server's
 * SubjectPublicKeyInfo, as HPKP and curl's --pinnedpubkey write it. */
static char *check_pin(char **value)
{
	static const char prefix[] = "sha256/";
	const char *b64 = *value + strlen(prefix);
	size_t n = strlen(b64);
	if (strncmp(*value, prefix, strlen(prefix)) != 0 || n != 44 ||
			b64[43] != '=' || b64[42] == '=') {
		return xstrdup("not sha256/ followed by a base64 SHA-256 digest");
	}
	for (size_t i = 0; i < 43; i++) {
		if (!isalnum((unsigned char)b64[i]) && b64[i] != '+' && b64[i] != '/') {
			return xstrdup("not sha256/ followed by a base64 SHA-256 digest");
		}
	}
	return NULL;
}

/* An IPv4 or IPv6 address, optionally with :PORT (IPv6 then in
 * brackets), as c-ares' ares_set_servers_ports_csv takes it. */
static char *check_resolver(char **value)
{
	for (const char *p = *value; *p != '\0'; p++) {
		if (!isxdigit((unsigned char)*p) && strchr(".:[]", *p) == NULL) {
			return xstrdup("not an IP address with an optional :port");
		}
	}
	return NULL;
}

/* The file is opened now, so a typo shows at load time, not at login
 * (O_NONBLOCK: a FIFO must not hang the check). */
static char *check_readable(char **value)
{
	int fd = open(*value, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		return xstrdup(strerror(errno));
	}
	struct stat st;
	bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	close(fd);
	return dir ? xstrdup(strerror(EISDIR)) : NULL;
}

/* Parsing. */

static void fail(struct load *ld, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records the first error as "FILE:LINE: ..." (LINE 0: "FILE: ..."). */
static void fail(struct load *ld, const char *fmt, ...)
{
	if (ld->error != NULL) {
		return;
	}
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->lineno > 0) {
		ld->error = xasprintf("%s:%d: %s", ld->path, ld->lineno, msg);
	} else {
		ld->error = xasprintf("%s: %s", ld->path, msg);
	}
}

static const struct key *key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) == 0 &&
			strcmp(keys[i].name, name) == 0) {
			return &keys[i];
		}
	}
	return NULL;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) == 0) {
			return true;
		}
	}
	return false;
}

/* inih reports sections only through keys; an unknown one is caught at
 * its own line here, with inih's rules (first ']' ends the name). */
static void check_section_line(struct load *ld, const char *line)
{
	if (ld->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
	}
	while (isspace((unsigned char)*line)) {
		line++;
	}
	const char *end = line[0] == '[' ? strchr(line, ']') : NULL;
	if (end == NULL) {
		return;
	}
	char *name = xstrndup(line + 1, (size_t)(end - line - 1));
	if (!section_known(name)) {
		char *p = printable(name);
		fail(ld, "unknown section [%s]", p);
		free(p);
	}
	free(name);
}

/* The ini_reader: the next line of ld->data, or NULL at the end or once
 * something is wrong. */
static char *next_line(char *str, int num, void *stream)
{
	struct load *ld = stream;
	if (ld->error != NULL || ld->pos >= ld->len) {
		return NULL;
	}
	const char *p = ld->data + ld->pos;
	size_t rest = ld->len - ld->pos;
	const char *nl = memchr(p, '\n', rest);
	size_t n = nl != NULL ? (size_t)(nl - p) : rest;
	ld->line_start = ld->pos;
	ld->line_len = n;
	ld->pos += n + (nl != NULL);
	ld->lineno++;
	if (memchr(p, '\0', n) != NULL) {
		fail(ld, "NUL byte in the line");
		return NULL;
	}
	if (n > LINE_MAX_BYTES || n >= (size_t)num) {
		fail(ld, "line longer than %d bytes", LINE_MAX_BYTES);
		return NULL;
	}
	memcpy(str, p, n);
	str[n] = '\0';
	check_section_line(ld, str);
	return ld->error != NULL ? NULL : str;
}

static int key_index(const struct key *k)
{
	return (int)(k - keys);
}

/* Which other password source was set already, if any. */
static const struct key *other_password_source(struct load *ld,
	const struct key *k)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].password_source && &keys[i] != k && ld->seen[i]) {
			return &keys[i];
		}
	}
	return NULL;
}

static void set_from_file(struct load *ld, const struct key *k,
	const char *value)
{
	const char *s = k->section, *n = k->name;
	int first = ld->seen[key_index(k)];
	if (first != 0) {
		fail(ld, "[%s] %s: duplicate key (first set on line %d)", s, n,
			first);
		return;
	}
	ld->seen[key_index(k)] = ld->lineno;
	const struct key *other = k->password_source ?
		other_password_source(ld, k) : NULL;
	if (other != NULL) {
		fail(ld, "[%s] %s: only one of password, password_file and "
			"password_command may be set (%s is set on line %d)",
			s, n, other->name, ld->seen[key_index(other)]);
		return;
	}
	if (value[0] == '\0') {
		fail(ld, "[%s] %s: missing value", s, n);
		return;
	}
	char *err = key_set(ld->c, k, value, ld->dir);
	if (err != NULL) {
		char *q = k->type == KEY_SECRET ? NULL : quote(value);
		fail(ld, "[%s] %s: %s%s%s", s, n, err, q ? ": " : "", q ? q : "");
		free(q);
		free(err);
	}
}

/* The ini_handler: one "name = value" in section. */
static int on_pair(void *user, const char *section, const char *name,
	const char *value)
{
	struct load *ld = user;
	if (ld->error != NULL) {
		return 0;
	}
	if (section[0] == '\0') {
		char *q = quote(name);
		fail(ld, "%s is outside any [section]", q);
		free(q);
		return 0;
	}
	if (!section_known(section)) {
		char *p = printable(section);
		fail(ld, "unknown section [%s]", p);
		free(p);
		return 0;
	}
	const struct key *k = key_find(section, name);
	if (k == NULL) {
		char *q = quote(name);
		fail(ld, "[%s] %s: unknown key", section, q);
		free(q);
		return 0;
	}
	set_from_file(ld, k, value);
	return ld->error == NULL;
}

/* inih's own complaint (no '=', no ']'): the line is shown unless it
 * may hold a secret. */
static void fail_syntax(struct load *ld, int line)
{
	const char *text = ld->data + ld->line_start;
	size_t n = ld->line_len;
	while (n > 0 && isspace((unsigned char)*text)) {
		text++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)text[n - 1])) {
		n--;
	}
	if (ld->lineno != line || n == 0 || strncasecmp(text, "password", 8) == 0) {
		ld->lineno = line;
		fail(ld, "expected 'key = value' or '[section]'");
		return;
	}
	char *copy = xstrndup(text, n);
	char *q = quote(copy);
	fail(ld, "expected 'key = value' or '[section]', not %s", q);
	free(q);
	free(copy);
}

/*
 * Debian's inih takes its options as globals: lines as long as ours, no
 * indented continuation lines (an indented "key = value" is a key), no
 * comments after a value (a password may hold " ;"), stop at the first
 * error. They are restored afterwards.
 */
static int parse(struct load *ld)
{
	int max_line = ini_max_line;
	bool multiline = ini_allow_multiline;
	bool inline_comments = ini_allow_inline_comments;
	bool stop = ini_stop_on_first_error;
	bool no_value = ini_allow_no_value;
	ini_max_line = LINE_MAX_BYTES + 3;
	ini_allow_multiline = false;
	ini_allow_inline_comments = false;
	ini_stop_on_first_error = true;
	ini_allow_no_value = false;
	int rc = ini_parse_stream(next_line, ld, on_pair, ld);
	ini_max_line = max_line;
	ini_allow_multiline = multiline;
	ini_allow_inline_comments = inline_comments;
	ini_stop_on_first_error = stop;
	ini_allow_no_value = no_value;
	return rc;
}

/* Reads all of fd, up to max bytes; -1 with errno, or -2 if larger. */
static ssize_t read_all(int fd, char *buf, size_t max)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, max - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -1;
		}
		if (n == 0) {
			return (ssize_t)len;
		}
		len += (size_t)n;
		if (len == max) {
			char extra;
			while ((n = read(fd, &extra, 1)) < 0 && errno == EINTR) {
			}
			return n == 0 ? (ssize_t)len : n < 0 ? -1 : -2;
		}
	}
}

/* Reads the file into ld->data; st gets its mode. */
static bool read_file(struct load *ld, struct stat *st)
{
	int fd = open(ld->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, st) < 0) {
		fail(ld, "%s", strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return false;
	}
	ld->data = xmalloc(FILE_MAX + 1);
	ssize_t n = read_all(fd, ld->data, FILE_MAX);
	int saved = errno;
	close(fd);
	if (n == -2) {
		fail(ld, "larger than %d bytes", FILE_MAX);
		return false;
	}
	if (n < 0) {
		fail(ld, "%s", strerror(saved));
		return false;
	}
	ld->len = (size_t)n;
	ld->data[n] = '\0';
	return true;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL) {
		return xstrdup(".");
	}
	if (slash == path) {
		return xstrdup("/");
	}
	return xstrndup(path, (size_t)(slash - path));
}

/* Is host a literal loopback address (127.0.0.0/8 or ::1)? */
static bool is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (host == NULL) {
		return false;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		return (ntohl(a4.s_addr) >> 24) == 127;
	}
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* tls = none sends the password and every message in clear: only for
 * a server on this machine (benchmarks, tests), never over a network. */
static void check_plaintext(struct load *ld)
{
	if (ld->c->tls != CONFIG_TLS_NONE || is_loopback(ld->c->host)) {
		return;
	}
	ld->lineno = ld->seen[key_index(key_find("server", "tls"))];
	fail(ld, "[server] tls = none is only allowed with host set to a "
		"loopback address (127.0.0.1 or ::1), for benchmarks and tests");
}

static void check_complete(struct load *ld)
{
	ld->lineno = 0;
	if (ld->c->jid == NULL) {
		fail(ld, "[account] jid is required");
	}
	check_plaintext(ld);
}

static void warn_permissions(struct load *ld, const struct stat *st)
{
	const struct key *pw = key_find("account", "password");
	if (ld->seen[key_index(pw)] && (st->st_mode & 077) != 0) {
		log_warnx("%s is readable by others and contains a password; "
			"chmod 600 it or use password_command", ld->path);
	}
}

static void load_parse(struct load *ld)
{
	int rc = parse(ld);
	if (ld->error != NULL) {
		return;
	}
	if (rc > 0) {
		fail_syntax(ld, rc);
	} else if (rc < 0) {
		fail(ld, "cannot parse (inih error %d)", rc);
	} else {
		check_complete(ld);
	}
}

/* Every field gets the default its keys[] row gives. */
void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].def == NULL) {
			continue;
		}
		char *err = key_set(c, &keys[i], keys[i].def, NULL);
		if (!xassert(err == NULL, "config: bad default for %s: %s",
			keys[i].name, err)) {
			abort();
		}
	}
}

/* Frees every string of keys[] (wiping secrets) and zeroes c. */
void config_finish(struct config *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (is_string_type(keys[i].type)) {
			store_string(c, &keys[i], NULL);
		}
	}
	free(c->path);
	memset(c, 0, sizeof(*c));
}

/* Reads, parses and checks path; on error c is reset to its defaults. */
int config_load(struct config *c, const char *path, char **cause)
{
	struct load ld = { .c = c, .path = path ? path : "(null)" };
	struct stat st;
	if (path == NULL) {
		fail(&ld, "no configuration file (neither XDG_CONFIG_HOME nor "
			"HOME is set)");
	} else if (read_file(&ld, &st)) {
		ld.dir = dir_of(path);
		load_parse(&ld);
	}
	if (ld.data != NULL) {
		xwipe(ld.data, ld.len);
		free(ld.data);
	}
	free(ld.dir);
	if (ld.error != NULL) {
		config_finish(c);
		config_init(c);
		*cause = ld.error;
		return -1;
	}
	free(c->path);
	c->path = xstrdup(path);
	warn_permissions(&ld, &st);
	return 0;
}

/* $XDG_CONFIG_HOME (if absolute) or the home directory, per XDG. */
char *config_default_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg != NULL && xdg[0] == '/') {
		return xasprintf("%s/xmppd/xmppd.conf", xdg);
	}
	const char *home = getenv("HOME");
	if (home == NULL || home[0] == '\0') {
		struct passwd *pw = getpwuid(getuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL || home[0] == '\0') {
		return NULL;
	}
	return xasprintf("%s/.config/xmppd/xmppd.conf", home);
}

/* Passwords. */

/* The first line of buf (len bytes; more followed if truncated), without
 * its "\n" or "\r\n"; NULL with *cause naming what. Wipes buf. */
static char *first_line(char *buf, size_t len, bool truncated,
	const char *what, char **cause)
{
	char *nl = memchr(buf, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - buf) : len;
	if (n > 0 && buf[n - 1] == '\r') {
		n--;
	}
	char *pw = NULL;
	if ((nl == NULL && truncated) || n > SECRET_MAX) {
		*cause = xasprintf("%s: password longer than %d bytes", what,
			SECRET_MAX);
	} else if (n == 0) {
		*cause = xasprintf("%s: empty password", what);
	} else if (memchr(buf, '\0', n) != NULL) {
		*cause = xasprintf("%s: NUL byte in the password", what);
	} else {
		pw = xstrndup(buf, n);
	}
	xwipe(buf, len);
	return pw;
}

static char *password_from_file(const char *path, char **cause)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*cause = xasprintf("password_file %s: %s", path, strerror(errno));
		return NULL;
	}
	char buf[SECRET_READ];
	ssize_t n = read_all(fd, buf, sizeof(buf));
	int saved = errno;
	close(fd);
	if (n == -1) {
		xwipe(buf, sizeof(buf));
		*cause = xasprintf("password_file %s: %s", path, strerror(saved));
		return NULL;
	}
	char *what = xasprintf("password_file %s", path);
	size_t len = n < 0 ? sizeof(buf) : (size_t)n;
	char *pw = first_line(buf, len, n == -2, what, cause);
	free(what);
	return pw;
}

/* fd moved above 0-2 (so the child's dup2 onto 1 is never a no-op that
 * would keep FD_CLOEXEC) and marked close-on-exec. */
static int fd_high_cloexec(int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int saved = errno;
	close(fd);
	errno = saved;
	return nfd;
}

static bool make_pipe(int fds[2])
{
	if (pipe(fds) < 0) {
		return false;
	}
	fds[0] = fd_high_cloexec(fds[0]);
	fds[1] = fd_high_cloexec(fds[1]);
	if (fds[0] < 0 || fds[1] < 0) {
		int saved = errno;
		if (fds[0] >= 0) {
			close(fds[0]);
		}
		if (fds[1] >= 0) {
			close(fds[1]);
		}
		errno = saved;
		return false;
	}
	return true;
}

/* /bin/sh -c cmd, stdin from /dev/null, stdout to out, SIGPIPE default
 * and no signal blocked (whatever the daemon set for itself). */
static int spawn_shell(const char *cmd, int out, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr,
		POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	int rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* Reads the child's output: the first SECRET_READ bytes are kept, up to
 * DRAIN_MAX more are read and dropped so that a command printing more
 * than a password (pass prints notes after it) still exits cleanly. */
static ssize_t read_output(int fd, char *buf, bool *truncated)
{
	ssize_t n = read_all(fd, buf, SECRET_READ);
	*truncated = n == -2;
	if (n != -2) {
		return n;
	}
	char scratch[4096];
	size_t drained = 0;
	ssize_t m;
	while (drained < DRAIN_MAX &&
		((m = read(fd, scratch, sizeof(scratch))) > 0 ||
		(m < 0 && errno == EINTR))) {
		drained += m > 0 ? (size_t)m : 0;
	}
	xwipe(scratch, sizeof(scratch));
	return SECRET_READ;
}

static bool wait_child(pid_t pid, char **cause)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			*cause = xasprintf("password_command: waitpid: %s",
				strerror(errno));
			return false;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		return true;
	}
	if (WIFSIGNALED(status)) {
		*cause = xasprintf("password_command was killed by signal %d",
			WTERMSIG(status));
	} else {
		*cause = xasprintf("password_command failed with exit status %d",
			WEXITSTATUS(status));
	}
	return false;
}

/*
 * Runs the command and takes the first line of its output. This blocks
 * the daemon until the command exits; acceptable for now as it runs once
 * per login and commands such as `pass show` are quick, but a command
 * that waits for a person (a pinentry) stalls the loop meanwhile. Its
 * output is never logged; its stderr goes to ours.
 */
static char *password_from_command(const char *cmd, char **cause)
{
	int fds[2];
	if (!make_pipe(fds)) {
		*cause = xasprintf("password_command: pipe: %s", strerror(errno));
		return NULL;
	}
	pid_t pid;
	int rc = spawn_shell(cmd, fds[1], &pid);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		*cause = xasprintf("password_command: /bin/sh: %s", strerror(rc));
		return NULL;
	}
	char buf[SECRET_READ];
	bool truncated;
	ssize_t n = read_output(fds[0], buf, &truncated);
	int saved = errno;
	close(fds[0]);
	if (!wait_child(pid, cause) || n < 0) {
		if (n < 0 && *cause == NULL) {
			*cause = xasprintf("password_command: read: %s",
				strerror(saved));
		}
		xwipe(buf, sizeof(buf));
		return NULL;
	}
	return first_line(buf, (size_t)n, truncated, "password_command", cause);
}

/* The password from whichever of the three sources is set. */
char *config_password(const struct config *c, char **cause)
{
	*cause = NULL;
	if (c->password != NULL) {
		return xstrdup(c->password);
	}
	if (c->password_file != NULL) {
		return password_from_file(c->password_file, cause);
	}
	if (c->password_command != NULL) {
		return password_from_command(c->password_command, cause);
	}
	*cause = xstrdup("no password: set password_command, password_file "
		"or password in [account]");
	return NULL;
}
