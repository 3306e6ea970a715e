/*
 * Configuration: the shipped example, defaults, every key, every kind of
 * error with its exact "FILE:LINE: " prefix, and the three password
 * sources. Files written by a test go to a private temporary directory
 * made in .init and removed in .fini.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "proto/alloc.h"

#ifndef TEST_DATA_DIR
#error "TEST_DATA_DIR must name tests/data"
#endif

static char tmpdir[] = "/tmp/xmppd-test-config-XXXXXX";
static struct config cfg;

static void setup(void)
{
	cr_assert(not(zero(ptr, mkdtemp(tmpdir))));
	log_init(LOG_INFO, 0);
	config_init(&cfg);
}

static void teardown(void)
{
	config_finish(&cfg);
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			char *p = xasprintf("%s/%s", tmpdir, e->d_name);
			unlink(p);
			free(p);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	rmdir(tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes text to tmpdir/name with mode; returns the path (free it). */
static char *write_file(const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(ge(int, fd, 0));
	size_t len = strlen(text);
	cr_assert(eq(sz, (size_t)write(fd, text, len), len));
	cr_assert(eq(int, fchmod(fd, mode), 0));
	close(fd);
	return path;
}

/* Loads text as tmpdir/t.conf, expecting failure; returns the cause
 * with the "DIR/t.conf" prefix checked and removed (free it). */
static char *load_error(const char *text)
{
	char *path = write_file("t.conf", text, 0600);
	char *cause = NULL;
	cr_assert(eq(int, config_load(&cfg, path, &cause), -1), "%s", text);
	cr_assert(not(zero(ptr, cause)));
	size_t n = strlen(path);
	cr_assert(eq(int, strncmp(cause, path, n), 0), "cause: %s", cause);
	char *rest = xstrdup(cause + n);
	free(cause);
	free(path);
	return rest;
}

static void load_ok(const char *path)
{
	char *cause = NULL;
	int rc = config_load(&cfg, path, &cause);
	cr_assert(eq(int, rc, 0), "%s", cause ? cause : "");
	cr_assert(zero(ptr, cause));
}

static void load_text_ok(const char *text)
{
	char *path = write_file("t.conf", text, 0600);
	load_ok(path);
	free(path);
}

static void assert_defaults(const struct config *c, bool account)
{
	if (!account) {
		cr_assert(zero(ptr, c->jid));
		cr_assert(zero(ptr, c->password_command));
	}
	cr_assert(zero(ptr, c->password));
	cr_assert(zero(ptr, c->password_file));
	cr_assert(zero(ptr, c->resource));
	cr_assert(zero(ptr, c->host));
	cr_assert(eq(int, c->port, 0));
	cr_assert(eq(int, c->tls, CONFIG_TLS_STARTTLS));
	cr_assert(zero(ptr, c->ca_file));
	cr_assert(zero(ptr, c->tls_priority));
	cr_assert(zero(ptr, c->show));
	cr_assert(zero(ptr, c->status));
	cr_assert(eq(int, c->priority, 0));
	cr_assert(zero(ptr, c->socket));
	cr_assert(eq(sz, c->max_line, 1024 * 1024));
	cr_assert(eq(sz, c->max_output, 4 * 1024 * 1024));
	cr_assert(eq(int, c->log_level, LOG_INFO));
	cr_assert(eq(int, c->log_xml, false));
	cr_assert(eq(sz, c->max_stanza, 1024 * 1024));
	cr_assert(eq(uint, c->iq_timeout, 30));
	cr_assert(zero(ptr, c->pin));
	cr_assert(zero(ptr, c->resolver));
	cr_assert(eq(uint, c->connect_timeout, 10));
	cr_assert(eq(uint, c->keepalive, 60));
	cr_assert(eq(uint, c->reconnect_max, 300));
	cr_assert(eq(uint, c->keepalive_timeout, 20));
	cr_assert(eq(int, c->stream_management, true));
	cr_assert(eq(uint, c->max_age, 3600));
	cr_assert(eq(uint, c->queue, 1000));
	cr_assert(zero(ptr, c->store_dir));
}

Test(config, reliability_keys)
{
	load_text_ok("[account]\njid = a@example.org\n"
		"[server]\npin = sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
		"resolver = 127.0.0.1:5353\nkeepalive = 30\nkeepalive_timeout = 5\n"
		"stream_management = no\nconnect_timeout = 3\n"
		"[delivery]\nmax_age = 0\nqueue = 10\n");
	cr_assert(eq(str, cfg.pin, "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
	cr_assert(eq(str, cfg.resolver, "127.0.0.1:5353"));
	cr_assert(eq(uint, cfg.keepalive, 30));
	cr_assert(eq(uint, cfg.keepalive_timeout, 5));
	cr_assert(eq(int, cfg.stream_management, false));
	cr_assert(eq(uint, cfg.connect_timeout, 3));
	cr_assert(eq(uint, cfg.max_age, 0));
	cr_assert(eq(uint, cfg.queue, 10));
}

Test(config, init_sets_every_default)
{
	assert_defaults(&cfg, false);
	cr_assert(zero(ptr, cfg.path));
}

Test(config, shipped_example_loads)
{
	const char *path = TEST_DATA_DIR "/../../xmppd.conf.example";
	load_ok(path);
	cr_assert(eq(str, cfg.path, (char *)path));
	cr_assert(eq(str, cfg.jid, "alice@example.org"));
	cr_assert(eq(str, cfg.password_command, "pass show xmpp/alice"));
	assert_defaults(&cfg, true);
}

Test(config, minimal_file_keeps_defaults)
{
	load_ok(TEST_DATA_DIR "/config-minimal.conf");
	cr_assert(eq(str, cfg.jid, "bob@example.net"));
	assert_defaults(&cfg, true);
	cr_assert(zero(ptr, cfg.password_command));
}

Test(config, parses_every_key)
{
	load_ok(TEST_DATA_DIR "/config-full.conf");
	cr_assert(eq(str, cfg.jid, "alice@example.org"));
	cr_assert(eq(str, cfg.password_command, "printf 'hunter2\\n'"));
	cr_assert(eq(str, cfg.resource, "laptop"));
	cr_assert(eq(str, cfg.host, "xmpp.example.net"));
	cr_assert(eq(int, cfg.port, 5223));
	cr_assert(eq(int, cfg.tls, CONFIG_TLS_DIRECT));
	cr_assert(eq(str, cfg.ca_file, TEST_DATA_DIR "/config-full.conf"));
	cr_assert(eq(str, cfg.tls_priority, "NORMAL:-VERS-ALL:+VERS-TLS1.3"));
	cr_assert(eq(str, cfg.show, "dnd"));
	cr_assert(eq(str, cfg.status, "In a meeting; back at 3"));
	cr_assert(eq(int, cfg.priority, -5));
	cr_assert(eq(str, cfg.socket, "/run/user/1000/xmppd/test.sock"));
	cr_assert(eq(sz, cfg.max_line, 64 * 1024));
	cr_assert(eq(sz, cfg.max_output, 8 * 1024 * 1024));
	cr_assert(eq(int, cfg.log_level, LOG_DEBUG));
	cr_assert(eq(int, cfg.log_xml, true));
	cr_assert(eq(sz, cfg.max_stanza, 262144));
	cr_assert(eq(uint, cfg.iq_timeout, 90));

	char *cause = NULL;
	char *pw = config_password(&cfg, &cause);
	cr_assert(eq(str, pw, "hunter2"));
	freezero_str(pw);
}

Test(config, value_forms)
{
	load_text_ok("\xEF\xBB\xBF[account]\n"
		"jid = carol@example.com\n"
		"  password = p ; w # x\n"
		"[presence]\n"
		"show = available\n"
		"priority = 127\n"
		"[log]\n"
		"xml = TRUE\n"
		"level = error\n"
		"[limits]\n"
		"max_stanza = 64m\n"
		"iq_timeout = 3600\n"
		"[control]\n"
		"max_line = 1k\n"
		"max_output = 1G\n");
	cr_assert(eq(str, cfg.password, "p ; w # x"));
	cr_assert(zero(ptr, cfg.show));
	cr_assert(eq(int, cfg.priority, 127));
	cr_assert(eq(int, cfg.log_xml, true));
	cr_assert(eq(int, cfg.log_level, LOG_ERROR));
	cr_assert(eq(sz, cfg.max_stanza, 64 * 1024 * 1024));
	cr_assert(eq(uint, cfg.iq_timeout, 3600));
	cr_assert(eq(sz, cfg.max_line, 1024));
	cr_assert(eq(sz, cfg.max_output, 1024 * 1024 * 1024));
}

Test(config, booleans)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "On" };
	static const char *const no[] = { "no", "false", "off", "0", "NO" };
	for (size_t i = 0; i < 5; i++) {
		char *t = xasprintf("[account]\njid=a@b.c\n[log]\nxml=%s\n", yes[i]);
		load_text_ok(t);
		cr_assert(eq(int, cfg.log_xml, true), "%s", yes[i]);
		free(t);
		t = xasprintf("[account]\njid=a@b.c\n[log]\nxml=%s\n", no[i]);
		load_text_ok(t);
		cr_assert(eq(int, cfg.log_xml, false), "%s", no[i]);
		free(t);
	}
}

Test(config, plaintext_on_loopback_only)
{
	load_text_ok("[account]\njid = a@b.c\n[server]\nhost = 127.0.0.2\n"
		"tls = none\n");
	cr_assert(eq(int, cfg.tls, CONFIG_TLS_NONE));
	config_finish(&cfg);
	config_init(&cfg);
	load_text_ok("[account]\njid = a@b.c\n[server]\nhost = ::1\n"
		"tls = none\n");
	cr_assert(eq(int, cfg.tls, CONFIG_TLS_NONE));
}

Test(config, paths_relative_to_file_and_home)
{
	setenv("HOME", "/home/alice", 1);
	load_text_ok("[account]\njid = a@b.c\npassword_file = ~/pw\n"
		"[control]\nsocket = run/x.sock\n");
	cr_assert(eq(str, cfg.password_file, "/home/alice/pw"));
	char *want = xasprintf("%s/run/x.sock", tmpdir);
	cr_assert(eq(str, cfg.socket, want));
	free(want);
}

Test(config, restores_inih_options)
{
	int max_line = ini_max_line;
	bool multiline = ini_allow_multiline;
	bool inline_comments = ini_allow_inline_comments;
	load_ok(TEST_DATA_DIR "/config-full.conf");
	cr_assert(eq(int, ini_max_line, max_line));
	cr_assert(eq(int, ini_allow_multiline, multiline));
	cr_assert(eq(int, ini_allow_inline_comments, inline_comments));
}

/* Errors. */

struct bad {
	char *text;
	char *cause;		/* after "DIR/t.conf" */
};

/* Criterion may run each parameter in a fresh exec of this binary (other
 * addresses), so parameters hold copies in its shared memory. */
static char *cr_strdup(const char *s)
{
	char *p = cr_malloc(strlen(s) + 1);
	strcpy(p, s);
	return p;
}

static void free_bad(struct criterion_test_params *params)
{
	struct bad *bad = params->params;
	for (size_t i = 0; i < params->length; i++) {
		cr_free(bad[i].text);
		cr_free(bad[i].cause);
	}
	cr_free(bad);
}

ParameterizedTestParameters(config, rejects_with_file_and_line)
{
	static const char *const rows[][2] = {
		{ "[server]\nport = abc\n",
			":2: [server] port: not a number between 1 and 65535: 'abc'" },
		{ "[server]\nport = 0\n",
			":2: [server] port: not a number between 1 and 65535: '0'" },
		{ "[server]\n\nport = 65536\n",
			":3: [server] port: not a number between 1 and 65535: '65536'" },
		{ "[server]\nport = 5222 ; comment\n",
			":2: [server] port: not a number between 1 and 65535: "
			"'5222 ; comment'" },
		{ "[server]\nport = 0x10\n",
			":2: [server] port: not a number between 1 and 65535: '0x10'" },
		{ "[server]\ntls = ssl\n",
			":2: [server] tls: not one of starttls, direct, none: 'ssl'" },
		{ "[account]\njid = a@b.c\n[server]\nhost = b.c\ntls = none\n",
			":5: [server] tls = none is only allowed with host set to a "
			"loopback address (127.0.0.1 or ::1), for benchmarks and tests" },
		{ "[account]\njid = a@b.c\n[server]\ntls = none\n",
			":4: [server] tls = none is only allowed with host set to a "
			"loopback address (127.0.0.1 or ::1), for benchmarks and tests" },
		{ "[account]\njid = a@b.c\n[server]\nhost = 128.0.0.1\ntls = none\n",
			":5: [server] tls = none is only allowed with host set to a "
			"loopback address (127.0.0.1 or ::1), for benchmarks and tests" },
		{ "[server]\nca_file = /nonexistent/ca.pem\n",
			":2: [server] ca_file: No such file or directory: "
			"'/nonexistent/ca.pem'" },
		{ "[server]\nca_file = /\n",
			":2: [server] ca_file: Is a directory: '/'" },
		{ "[server]\nhost = a b\n",
			":2: [server] host: not a host name or address: 'a b'" },
		{ "[server]\npin = sha256/abc=\n",
			":2: [server] pin: not sha256/ followed by a base64 SHA-256 "
			"digest: 'sha256/abc='" },
		{ "[server]\npin = md5/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
			":2: [server] pin: not sha256/ followed by a base64 SHA-256 "
			"digest: 'md5/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='" },
		{ "[server]\nresolver = dns.example\n",
			":2: [server] resolver: not an IP address with an optional "
			":port: 'dns.example'" },
		{ "[server]\nkeepalive = 1\n",
			":2: [server] keepalive: not a number between 5 and 3600: '1'" },
		{ "[delivery]\nqueue = 0\n",
			":2: [delivery] queue: not a number between 1 and 1000000: '0'" },
		{ "[presence]\nshow = busy\n",
			":2: [presence] show: not one of available, away, chat, dnd, "
			"xa: 'busy'" },
		{ "[presence]\npriority = 128\n",
			":2: [presence] priority: not a number between -128 and 127: "
			"'128'" },
		{ "[presence]\npriority = -129\n",
			":2: [presence] priority: not a number between -128 and 127: "
			"'-129'" },
		{ "[control]\nmax_line = 1X\n",
			":2: [control] max_line: not a size between 1K and 64M: '1X'" },
		{ "[control]\nmax_line = -1\n",
			":2: [control] max_line: not a size between 1K and 64M: '-1'" },
		{ "[control]\nmax_output = 99999999999999999999M\n",
			":2: [control] max_output: not a size between 64K and 1G: "
			"'99999999999999999999M'" },
		{ "[limits]\nmax_stanza = 1K\n",
			":2: [limits] max_stanza: not a size between 4K and 64M: '1K'" },
		{ "[limits]\nmax_stanza = 65M\n",
			":2: [limits] max_stanza: not a size between 4K and 64M: '65M'" },
		{ "[limits]\niq_timeout = 0\n",
			":2: [limits] iq_timeout: not a number between 1 and 3600: '0'" },
		{ "[limits]\niq_timeout = 3601\n",
			":2: [limits] iq_timeout: not a number between 1 and 3600: "
			"'3601'" },
		{ "[log]\nlevel = verbose\n",
			":2: [log] level: not one of error, warn, info, debug: "
			"'verbose'" },
		{ "[log]\nxml = maybe\n",
			":2: [log] xml: not yes or no: 'maybe'" },
		{ "[account]\njid = alice\n",
			":2: [account] jid: not an account JID (user@domain): 'alice'" },
		{ "[account]\njid = alice@example.org/laptop\n",
			":2: [account] jid: must be a bare JID (set the resource with "
			"resource =): 'alice@example.org/laptop'" },
		{ "[account]\njid = al ice@example.org\n",
			":2: [account] jid: not a valid JID (localpart contains a "
			"disallowed character): 'al ice@example.org'" },
		{ "[account]\nresource = a\tb\n",
			":2: [account] resource: not a valid resource (resourcepart "
			"contains a disallowed character): 'a?b'" },
		{ "# comment\n; comment\n[sever]\nport = 1\n",
			":3: unknown section [sever]" },
		{ "[account]\njid = a@b.c\n[empty]\n",
			":3: unknown section [empty]" },
		{ "[server]\nprot = 5222\n",
			":2: [server] 'prot': unknown key" },
		{ "jid = a@b.c\n",
			":1: 'jid' is outside any [section]" },
		{ "[server]\nport = 1\n[account]\njid = a@b.c\n[server]\nport = 2\n",
			":6: [server] port: duplicate key (first set on line 2)" },
		{ "[server]\nhost =\n",
			":2: [server] host: missing value" },
		{ "[account]\njid = a@b.c\nnonsense\n",
			":3: expected 'key = value' or '[section]', not 'nonsense'" },
		{ "[account]\r\njid = a@b.c\r\nbad line \r\n",
			":3: expected 'key = value' or '[section]', not 'bad line'" },
		{ "[account\njid = a@b.c\n",
			":1: expected 'key = value' or '[section]', not '[account'" },
		{ "[presence]\nstatus = one\n  status two\n",
			":3: expected 'key = value' or '[section]', not 'status two'" },
		{ "[presence]\nstatus = one\n  priority = 1\nshow = xx\n",
			":4: [presence] show: not one of available, away, chat, dnd, "
			"xa: 'xx'" },
		{ "[account]\npassword_command = pass x\npassword_file = /x\n",
			":3: [account] password_file: only one of password, "
			"password_file and password_command may be set "
			"(password_command is set on line 2)" },
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	struct bad *bad = cr_malloc(n * sizeof(*bad));
	for (size_t i = 0; i < n; i++) {
		bad[i].text = cr_strdup(rows[i][0]);
		bad[i].cause = cr_strdup(rows[i][1]);
	}
	return cr_make_param_array(struct bad, bad, n, free_bad);
}

ParameterizedTest(struct bad *b, config, rejects_with_file_and_line)
{
	char *cause = load_error(b->text);
	cr_assert(eq(str, cause, b->cause));
	free(cause);
	/* A failed load leaves the defaults. */
	assert_defaults(&cfg, false);
}

Test(config, documented_port_error)
{
	char *cause = NULL;
	const char *path = TEST_DATA_DIR "/config-bad-port.conf";
	cr_assert(eq(int, config_load(&cfg, path, &cause), -1));
	char *want = xasprintf("%s:7: [server] port: not a number between 1 "
		"and 65535: 'abc'", path);
	cr_assert(eq(str, cause, want));
	free(want);
	free(cause);
}

Test(config, missing_jid)
{
	char *cause = load_error("[server]\nport = 5222\n");
	cr_assert(eq(str, cause, ": [account] jid is required"));
	free(cause);
}

Test(config, missing_file)
{
	char *path = xasprintf("%s/nope.conf", tmpdir);
	char *cause = NULL;
	cr_assert(eq(int, config_load(&cfg, path, &cause), -1));
	char *want = xasprintf("%s: No such file or directory", path);
	cr_assert(eq(str, cause, want));
	free(want);
	free(cause);
	free(path);
}

Test(config, directory_is_not_a_file)
{
	char *cause = NULL;
	cr_assert(eq(int, config_load(&cfg, tmpdir, &cause), -1));
	char *want = xasprintf("%s: Is a directory", tmpdir);
	cr_assert(eq(str, cause, want));
	free(want);
	free(cause);
}

Test(config, null_path)
{
	char *cause = NULL;
	cr_assert(eq(int, config_load(&cfg, NULL, &cause), -1));
	cr_assert(not(zero(ptr, strstr(cause, "HOME"))));
	free(cause);
}

Test(config, overlong_line)
{
	char *line = xmalloc(5000);
	memset(line, 'a', 4999);
	line[4999] = '\0';
	char *text = xasprintf("[presence]\nstatus = ok\nstatus = %s\n", line);
	char *cause = load_error(text);
	cr_assert(eq(str, cause, ":3: line longer than 4096 bytes"));
	free(cause);
	free(text);
	free(line);
}

Test(config, long_line_within_limit)
{
	char *value = xmalloc(4001);
	memset(value, 'a', 4000);
	value[4000] = '\0';
	char *text = xasprintf("[account]\njid = a@b.c\n[presence]\nstatus = %s\n",
		value);
	load_text_ok(text);
	cr_assert(eq(str, cfg.status, value));
	free(text);
	free(value);
}

Test(config, nul_byte)
{
	char *path = xasprintf("%s/t.conf", tmpdir);
	FILE *f = fopen(path, "w");
	fwrite("[account]\njid = a@b\0.c\n", 1, 23, f);
	fclose(f);
	char *cause = NULL;
	cr_assert(eq(int, config_load(&cfg, path, &cause), -1));
	char *want = xasprintf("%s:2: NUL byte in the line", path);
	cr_assert(eq(str, cause, want));
	free(want);
	free(cause);
	free(path);
}

Test(config, secrets_are_not_echoed)
{
	char *cause = load_error("[account]\npassword hunter2\n");
	cr_assert(eq(str, cause, ":2: expected 'key = value' or '[section]'"));
	free(cause);
	cause = load_error("[account]\npassword = hunter2\npassword = hunter3\n");
	cr_assert(zero(ptr, strstr(cause, "hunter")), "%s", cause);
	free(cause);
}

Test(config, one_password_source)
{
	static const char *const texts[] = {
		"[account]\npassword = x\npassword_command = y\n",
		"[account]\npassword_file = x\npassword = y\n",
		"[account]\npassword_command = x\npassword_file = y\n",
	};
	for (size_t i = 0; i < 3; i++) {
		char *cause = load_error(texts[i]);
		cr_assert(not(zero(ptr, strstr(cause, ":3: [account] password"))),
			"%s", cause);
		cr_assert(not(zero(ptr, strstr(cause, "only one of"))), "%s", cause);
		free(cause);
	}
}

Test(config, jid_is_prepared)
{
	load_text_ok("[account]\njid = Alice@EXAMPLE.org\n");
	cr_assert(eq(str, cfg.jid, "alice@example.org"));
}

/* Permissions warning: stderr goes to a file for the load. */

static char *load_capturing_stderr(const char *text, mode_t mode)
{
	char *path = write_file("t.conf", text, mode);
	char *err_path = xasprintf("%s/stderr", tmpdir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(err_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	load_ok(path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char *out = xcalloc(1, 4096);
	cr_assert(ge(int, (int)pread(fd, out, 4095, 0), 0));
	close(fd);
	free(err_path);
	free(path);
	return out;
}

Test(config, warns_when_password_file_is_readable)
{
	char *out = load_capturing_stderr(
		"[account]\njid = a@b.c\npassword = hunter2\n", 0644);
	cr_assert(not(zero(ptr, strstr(out,
		"/t.conf is readable by others and contains a password"))),
		"stderr: %s", out);
	cr_assert(zero(ptr, strstr(out, "hunter2")));
	free(out);
}

Test(config, no_warning_when_private)
{
	char *out = load_capturing_stderr(
		"[account]\njid = a@b.c\npassword = hunter2\n", 0600);
	cr_assert(eq(str, out, ""));
	free(out);
	out = load_capturing_stderr(
		"[account]\njid = a@b.c\npassword_command = true\n", 0644);
	cr_assert(eq(str, out, ""));
	free(out);
}

/* Default path. */

Test(config, default_path)
{
	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	setenv("HOME", "/home/alice", 1);
	char *p = config_default_path();
	cr_assert(eq(str, p, "/xdg/xmppd/xmppd.conf"));
	free(p);
	setenv("XDG_CONFIG_HOME", "relative", 1);
	p = config_default_path();
	cr_assert(eq(str, p, "/home/alice/.config/xmppd/xmppd.conf"));
	free(p);
	unsetenv("XDG_CONFIG_HOME");
	p = config_default_path();
	cr_assert(eq(str, p, "/home/alice/.config/xmppd/xmppd.conf"));
	free(p);
}

/* Passwords. */

static char *password_of(const char *key, const char *value, char **cause)
{
	char *text = xasprintf("[account]\njid = a@b.c\n%s = %s\n", key, value);
	load_text_ok(text);
	free(text);
	*cause = NULL;
	return config_password(&cfg, cause);
}

static void expect_password(const char *key, const char *value,
	const char *want)
{
	char *cause;
	char *pw = password_of(key, value, &cause);
	cr_assert(not(zero(ptr, pw)), "%s = %s: %s", key, value,
		cause ? cause : "");
	cr_assert(eq(str, pw, (char *)want));
	freezero_str(pw);
}

/* The cause contains want and never the secret "leak". */
static void expect_password_error(const char *key, const char *value,
	const char *want)
{
	char *cause;
	char *pw = password_of(key, value, &cause);
	cr_assert(zero(ptr, pw), "%s = %s gave '%s'", key, value, pw);
	cr_assert(not(zero(ptr, cause)));
	cr_assert(not(zero(ptr, strstr(cause, want))), "cause: %s", cause);
	cr_assert(zero(ptr, strstr(cause, "leak")), "cause: %s", cause);
	free(cause);
}

Test(config, password_inline)
{
	expect_password("password", "correct horse", "correct horse");
}

Test(config, no_password_source)
{
	load_text_ok("[account]\njid = a@b.c\n");
	char *cause = NULL;
	cr_assert(zero(ptr, config_password(&cfg, &cause)));
	cr_assert(not(zero(ptr, cause)));
	free(cause);
}

Test(config, password_file)
{
	free(write_file("pw", "s3cret\nsecond line\n", 0600));
	expect_password("password_file", "pw", "s3cret");
	free(write_file("pw", "crlf\r\n", 0600));
	expect_password("password_file", "pw", "crlf");
	free(write_file("pw", "no newline", 0600));
	expect_password("password_file", "pw", "no newline");
}

Test(config, password_file_errors)
{
	free(write_file("pw", "\nleak\n", 0600));
	expect_password_error("password_file", "pw", "empty password");
	free(write_file("pw", "", 0600));
	expect_password_error("password_file", "pw", "empty password");
	expect_password_error("password_file", "missing",
		"missing: No such file or directory");
	char *big = xmalloc(5001);
	memset(big, 'x', 5000);
	big[5000] = '\0';
	free(write_file("pw", big, 0600));
	expect_password_error("password_file", "pw", "longer than 4096 bytes");
	/* Exactly 4096 bytes and a newline still fits. */
	big[4096] = '\n';
	big[4097] = '\0';
	free(write_file("pw", big, 0600));
	big[4096] = '\0';
	expect_password("password_file", "pw", big);
	free(big);
}

Test(config, password_command, .timeout = 20)
{
	expect_password("password_command", "printf 'hunter2\\n'", "hunter2");
	expect_password("password_command", "printf 'pw'", "pw");
	expect_password("password_command", "printf 'pw\\r\\nnotes\\nmore\\n'",
		"pw");
	/* stdin is /dev/null: read fails at once. */
	expect_password("password_command", "read x; echo \"read:$?\"", "read:1");
	/* More than 4 KiB after the first line is drained, not fatal. */
	expect_password("password_command", "echo pw; head -c 100000 /dev/zero",
		"pw");
}

Test(config, password_command_errors, .timeout = 20)
{
	expect_password_error("password_command", "printf 'leak\\n'; exit 3",
		"password_command failed with exit status 3");
	expect_password_error("password_command", "echo leak; kill -9 $$",
		"password_command was killed by signal 9");
	expect_password_error("password_command", "true", "empty password");
	expect_password_error("password_command",
		"head -c 5000 /dev/zero | tr '\\0' a", "longer than 4096 bytes");
	expect_password_error("password_command",
		"exec 2>/dev/null; /nonexistent/cmd",
		"exit status 127");
}
