/*
 * Small facts about the account kept in the state directory
 * ([store] dir, default $XDG_STATE_HOME/xmppd) between runs: whether the
 * account has ever authenticated with SCRAM, after which a server
 * offering only PLAIN is refused as a downgrade; the last archive id
 * seen, where the next catch-up starts.
 */
#ifndef XMPPD_DAEMON_STATE_H
#define XMPPD_DAEMON_STATE_H

#include <stdbool.h>

struct config;

/* The state directory (caller frees), or NULL when there is no home. */
char *state_dir(const struct config *cfg);
/* Has this account authenticated with SCRAM before? */
bool state_scram_known(const struct config *cfg, const char *bare_jid);
/* Records that it has; logs and carries on if it cannot. */
void state_remember_scram(const struct config *cfg, const char *bare_jid);
/* A one-line value kept as JID.NAME in the state directory (caller
 * frees), or NULL when there is none. */
char *state_read(const struct config *cfg, const char *bare_jid,
	const char *name);
/* Replaces it atomically (a new file renamed over the old, mode 0600);
 * logs and carries on if it cannot. */
void state_write(const struct config *cfg, const char *bare_jid,
	const char *name, const char *value);

/* Removes JID.NAME (once its value moved into the store). */
void state_remove(const struct config *cfg, const char *bare_jid,
	const char *name);
/* mkdir -p path with mode 0700 for what it creates; path is modified
 * while it works and restored. */
bool state_make_dirs(char *path);

#endif
