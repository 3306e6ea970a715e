/*
 * Configuration: one INI file (inih), driven by a single key table in
 * config.c. Every field has its default after config_init().
 */
#ifndef XMPPD_DAEMON_CONFIG_H
#define XMPPD_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/log.h"

enum config_tls {
	CONFIG_TLS_STARTTLS,
	CONFIG_TLS_DIRECT,
	CONFIG_TLS_NONE,	/* plain TCP, loopback hosts only (benchmarks) */
};

struct config {
	char *path;			/* the file read, for messages */

	/* [account] */
	char *jid;			/* prepared bare JID */
	char *password;			/* secret: wiped on free */
	char *password_file;
	char *password_command;
	char *resource;			/* NULL: server-assigned */

	/* [server] */
	char *host;			/* NULL: the JID's domain */
	int port;			/* 0: default (5222, or 5223 direct) */
	enum config_tls tls;
	char *ca_file;			/* NULL: system trust only */
	char *tls_priority;		/* NULL: GnuTLS default, TLS >= 1.2 */
	char *pin;			/* "sha256/BASE64" SPKI pin, or NULL */
	char *resolver;			/* DNS server "IP[:PORT]", NULL: system */
	unsigned connect_timeout;	/* seconds per address, default 10 */
	unsigned keepalive;		/* quiet seconds before a probe, 60 */
	unsigned keepalive_timeout;	/* seconds to answer it, 20 */
	unsigned reconnect_max;		/* backoff cap in seconds, 300 */
	bool stream_management;		/* use XEP-0198 when offered */

	/* [presence] */
	char *show;			/* NULL (available), away, chat, dnd, xa */
	char *status;
	int priority;

	/* [control] */
	char *socket;			/* NULL: $XDG_RUNTIME_DIR/xmppd/xmppd.sock */
	size_t max_line;		/* bytes per request line, default 1 MiB */
	size_t max_output;		/* unread bytes per client, default 4 MiB */

	/* [log] */
	enum log_level log_level;
	bool log_xml;

	/* [limits] */
	size_t max_stanza;		/* default 1 MiB */
	unsigned iq_timeout;		/* seconds, default 30 */

	/* [delivery] */
	unsigned max_age;		/* seconds an unsent message may wait */
	unsigned queue;			/* messages held while offline */

	/* [muc] */
	unsigned muc_self_ping;		/* seconds between self-pings, 0: off */

	/* [store] */
	char *store_dir;		/* NULL: $XDG_STATE_HOME/xmppd */
	char *store_path;		/* NULL: STORE_DIR/JID.db */
	bool store_enabled;		/* no: everything in memory */
	bool store_fsync;		/* each commit on the disk (power loss) */
	unsigned store_retention;	/* days of messages kept, 0: forever */
};

/* Fills in every default. */
void config_init(struct config *c);
/* Frees strings (wiping the password); c can be init'ed again. */
void config_finish(struct config *c);
/*
 * Reads path into c (which must have been init'ed). On error returns -1
 * and sets *cause to "FILE:LINE: what is wrong" (caller frees). Unknown
 * sections or keys and bad values are errors. A missing jid is an error;
 * so is having more than one of password, password_file,
 * password_command. Warns (log_warnx) when the file is readable by group
 * or others while it holds a password.
 * On error c is back to its defaults (secrets wiped); on success
 * c->path is a copy of path. Relative paths in the file are taken from
 * the file's directory, "~/" from $HOME. xmppd.conf(5) has every key.
 */
int config_load(struct config *c, const char *path, char **cause);
/* The default config path: $XDG_CONFIG_HOME/xmppd/xmppd.conf or
 * ~/.config/xmppd/xmppd.conf; caller frees. NULL if there is no home
 * directory at all (config_load then says so). */
char *config_default_path(void);
/*
 * Obtains the password: config value, else the first line of
 * password_file, else the first line of password_command's output (run
 * with /bin/sh -c, stdin from /dev/null, bounded output). Returns a new
 * string (wipe it: freezero_str) or NULL with *cause set (caller frees).
 * A password_command blocks the caller until the command exits.
 */
char *config_password(const struct config *c, char **cause);

#endif
