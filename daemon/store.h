/*
 * The durable store: one SQLite database per account (default
 * STATE_DIR/JID.db, [store] path overrides), in WAL mode, mode 0600,
 * its schema numbered by PRAGMA user_version and brought up to date by
 * a table of migration steps.
 *
 * It holds the outbox (accepted messages not yet acknowledged), the
 * message log (every inbound message event and every outbound message,
 * with its seq), small facts in a meta table (the reserved seq mark, the
 * last archive id) and nothing else.
 *
 * Group commit: every write of one loop turn goes into one transaction,
 * begun by the first write and committed in a uv_check callback at the
 * end of the turn; only then are the callers that asked to hear of it
 * (store_when_committed) told, each with NULL or the reason it failed.
 * A transaction that failed is rolled back whole.
 *
 * A database that cannot be opened leaves the store unusable: every
 * write is refused with store_error()'s reason, and status shows it. A
 * store that is disabled ([store] enabled = no) accepts nothing and is
 * not an error: the daemon keeps everything in memory.
 */
#ifndef XMPPD_DAEMON_STORE_H
#define XMPPD_DAEMON_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct config;
struct store;

/* Told once the writes made before it was registered are committed:
 * error is NULL, or why they are not (everything of that turn was rolled
 * back). */
typedef void (*store_done_cb)(void *ud, const char *error);

/* Wall-clock milliseconds since the epoch. */
int64_t store_wall_ms(void);
/* Opens (or creates) the account's database; never NULL. */
struct store *store_open(uv_loop_t *loop, const struct config *cfg,
	const char *bare_jid);
/* The loop is ending: closes the store's libuv handles (writes after
 * this wait for store_close). Accepts NULL. */
void store_stop(struct store *s);
/* Commits what is pending (telling those who wait), closes the database
 * and frees s once its handles have closed; accepts NULL. */
void store_close(struct store *s);
/* Is the store configured at all ([store] enabled)? */
bool store_enabled(const struct store *s);
/* Why an enabled store cannot be used (open failed, or the last commit
 * failed), or NULL when it works or is disabled. */
const char *store_error(const struct store *s);
/* Adds "store": {"enabled","path"?,"ok","error"?,"last_error"?} to a
 * status object (last_error: the latest failed commit, even when later
 * ones worked). */
void store_status(const struct store *s, json_t *o);
/* Called just before each commit, to add what must be consistent with
 * the turn's writes (the stream management counters). */
void store_set_precommit(struct store *s, void (*cb)(void *ud), void *ud);
/* Opens the turn's transaction even if nothing else writes, so that the
 * precommit hook runs at its end. */
void store_touch(struct store *s);
/* Calls cb once the writes so far are committed (or failed). */
void store_when_committed(struct store *s, store_done_cb cb, void *ud);

/* An outbox row: returns its row id (> 0), or 0 with the reason in
 * store_error() (the write is refused). accepted_ms is wall-clock. */
int64_t store_outbox_add(struct store *s, const char *msg_id, const char *to,
	const char *stanza, int64_t accepted_ms);
/* The row left the outbox (acknowledged, expired, failed). */
void store_outbox_remove(struct store *s, int64_t rowid);
typedef void (*store_outbox_cb)(void *ud, int64_t rowid, const char *msg_id,
	const char *to, const char *stanza, int64_t accepted_ms);
/* Every outbox row, oldest first. */
void store_outbox_load(struct store *s, store_outbox_cb cb, void *ud);

/* A value of the meta table (caller frees), or NULL. */
char *store_meta_get(struct store *s, const char *key);
/* Sets it in the current transaction; false if refused. */
bool store_meta_set(struct store *s, const char *key, const char *value);

/* The highest seq handed out before (0 for a new store): events start
 * after it. */
uint64_t store_seq_start(const struct store *s);

/* One message of the log. */
struct store_msg {
	uint64_t seq;
	bool outbound;
	const char *sender;	/* bare JID of who sent it */
	const char *peer;	/* bare JID of the other side */
	const char *type;
	const char *stanza_id;	/* our archive's id, or NULL */
	const char *origin_key;	/* sender + origin-id/id, or NULL */
	const char *msg_id;
	const char *event;	/* the event line, JSON, no newline */
};

/* Writes one message to the log, in the turn's transaction (rows are
 * inserted in batches, at the latest before the commit or anything
 * that reads the log); false if refused now. A row that cannot be
 * inserted fails the turn's commit. */
bool store_log_message(struct store *s, const struct store_msg *m);
/* Does the log hold a message with this stanza-id or origin key? */
bool store_message_known(struct store *s, const char *stanza_id,
	const char *origin_key);

/* A message of the log as read back: its seq, whether we sent it and
 * its event line (borrowed for the call). Returns false to stop. */
typedef bool (*store_row_cb)(void *ud, uint64_t seq, bool outbound,
	const char *event, size_t len);
/* A query of the log: seq in (after, upto] (upto 0: no bound), sender
 * or peer given as a bare JID (or NULL), inbound only, oldest first;
 * newest first with newest set. At most max rows. */
struct store_query {
	uint64_t after;
	uint64_t upto;
	const char *sender;
	const char *peer;
	bool inbound_only;
	bool newest;
	unsigned max;
};
/* Runs q, calling cb per row; -1 if the store cannot be read. */
int store_log_read(struct store *s, const struct store_query *q,
	store_row_cb cb, void *ud);
/* The highest seq the retention pruning removed (0: none). */
uint64_t store_pruned_upto(struct store *s);

#endif
