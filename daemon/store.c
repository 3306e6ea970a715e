#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/state.h"
#include "daemon/store.h"
#include "daemon/store-ckpt.h"
#include "proto/alloc.h"

#define SEQ_BLOCK 10000		/* seqs reserved ahead in one write */
#define PRUNE_MS (24 * 3600 * 1000)	/* retention pruning, daily */
#define PRUNE_CHUNK 4096	/* seqs one idle callback prunes */
#define BUSY_MS 2000
/* SQLite's page cache (its default is 2 MiB): appends to the log touch
 * the right edge of each index and the dedup lookups are mostly spared
 * by the Bloom filter, so a quarter of it keeps the same hit rate and
 * 1.5 MiB less resident under a burst. */
#define CACHE_KIB 512
#define STR(x) STR_(x)
#define STR_(x) #x
#define KEYS_MIN_BITS ((size_t)1 << 16)	/* the Bloom filter: 8 KiB first, */
#define KEYS_MAX_BITS ((size_t)1 << 23)	/* 1 MiB at most */
#define KEYS_BITS_PER_KEY 12	/* at least, when built; rebuilt below 6 */
#define KEYS_PROBES 4
#define KEYS_CHUNK 1024		/* keys read by one idle callback */
#define LOG_BATCH 16		/* log rows written by one INSERT */

static bool seq_as_key(struct store *s);
static void keys_build(struct store *s, size_t expect);
static void keys_idle_cb(uv_idle_t *h);
static size_t log_span(struct store *s);
static void prune_idle_cb(uv_idle_t *h);
static uint64_t meta_pruned_upto(struct store *s);
static void prune_finish(struct store *s);

/* Of the old rows with m's seq, is m the one that keeps it? */
#define FIRST_OF_SEQ "m.rowid = (SELECT rowid FROM messages" \
	" WHERE seq = m.seq ORDER BY outbound, rowid LIMIT 1)"

/* The schema, one step per version: step i brings user_version from i
 * to i + 1, by its SQL and then its function (either may be NULL), in
 * one transaction. Add steps at the end; never edit one that shipped. */
static const struct migration {
	const char *sql;
	bool (*fn)(struct store *s);
} migrations[] = {
	/* 1: outbox, message log, meta */
	{ "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE outbox (id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL,"
	" recipient TEXT NOT NULL, stanza TEXT NOT NULL,"
	" accepted INTEGER NOT NULL);"
	"CREATE TABLE messages (seq INTEGER NOT NULL, outbound INTEGER NOT NULL,"
	" sender TEXT, peer TEXT, type TEXT, stanza_id TEXT, origin_key TEXT,"
	" msg_id TEXT, time INTEGER NOT NULL, event TEXT NOT NULL);"
	"CREATE INDEX messages_seq ON messages (seq);"
	"CREATE INDEX messages_peer ON messages (peer, seq);"
	"CREATE INDEX messages_time ON messages (time);"
	"CREATE INDEX messages_stanza_id ON messages (stanza_id)"
	" WHERE stanza_id IS NOT NULL;"
	"CREATE INDEX messages_origin ON messages (origin_key)"
	" WHERE origin_key IS NOT NULL;", NULL },
	/* 2: no index on time: only the daily pruning asks by time, and it
	 * may scan. (seq cannot be the rowid: an outbound message carries
	 * the seq of the event before it, which others may share.) */
	{ "DROP INDEX messages_time;", NULL },
	/* 3: seq is the rowid (an outbound message has a seq of its own
	 * now): the table is rebuilt and messages_seq goes. Of the rows
	 * that shared a seq the first keeps it (an inbound one if any: its
	 * event had that number), the others get free ones (seq_as_key). */
	{ "CREATE TABLE messages3 (seq INTEGER PRIMARY KEY,"
	" outbound INTEGER NOT NULL, sender TEXT, peer TEXT, type TEXT,"
	" stanza_id TEXT, origin_key TEXT, msg_id TEXT,"
	" time INTEGER NOT NULL, event TEXT NOT NULL);"
	"INSERT INTO messages3 SELECT seq, outbound, sender, peer, type,"
	" stanza_id, origin_key, msg_id, time, event FROM messages AS m"
	" WHERE " FIRST_OF_SEQ ";", seq_as_key },
};
#define SCHEMA_VERSION (int)(sizeof(migrations) / sizeof(migrations[0]))

#define LOG_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define LOG_ROWS4 LOG_ROW ", " LOG_ROW ", " LOG_ROW ", " LOG_ROW
#define LOG_ROWS16 LOG_ROWS4 ", " LOG_ROWS4 ", " LOG_ROWS4 ", " LOG_ROWS4

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_OUTBOX_ADD,
	ST_OUTBOX_DEL,
	ST_OUTBOX_ALL,
	ST_META_GET,
	ST_META_SET,
	ST_LOG_ADD,
	ST_LOG_ADD_BATCH,
	ST_KNOWN_SID,
	ST_KNOWN_ORIGIN,
	ST_PRUNE_MAX,
	ST_PRUNE,
	ST_KEYS_SID,
	ST_KEYS_ORIGIN,
	ST_LOG_SPAN,
	ST_LOG_ENDS,
	NSTMTS,
};

static const char *const stmt_sql[NSTMTS] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_OUTBOX_ADD] = "INSERT INTO outbox (msg_id, recipient, stanza, accepted)"
		" VALUES (?, ?, ?, ?)",
	[ST_OUTBOX_DEL] = "DELETE FROM outbox WHERE id = ?",
	[ST_OUTBOX_ALL] = "SELECT id, msg_id, recipient, stanza, accepted"
		" FROM outbox ORDER BY id",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
	[ST_LOG_ADD] = "INSERT INTO messages (seq, outbound, sender, peer, type,"
		" stanza_id, origin_key, msg_id, time, event)"
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_LOG_ADD_BATCH] = "INSERT INTO messages (seq, outbound, sender, peer,"
		" type, stanza_id, origin_key, msg_id, time, event) VALUES "
		LOG_ROWS16,
	[ST_KNOWN_SID] = "SELECT 1 FROM messages WHERE stanza_id = ? LIMIT 1",
	[ST_KNOWN_ORIGIN] = "SELECT 1 FROM messages WHERE origin_key = ? LIMIT 1",
	/* A chunk of the retention pruning: seqs ?1 < seq <= ?2 (the
	 * rowid: no scan outside of it), older than ?3. */
	[ST_PRUNE_MAX] = "SELECT max(seq) FROM messages"
		" WHERE seq > ?1 AND seq <= ?2 AND time < ?3",
	[ST_PRUNE] = "DELETE FROM messages"
		" WHERE seq > ?1 AND seq <= ?2 AND time < ?3",
	[ST_LOG_ENDS] = "SELECT (SELECT min(seq) FROM messages),"
		" (SELECT max(seq) FROM messages)",
	/* The filter's build, a chunk at a time along each key's index
	 * (a comparison on the key lets SQLite use the partial index). */
	[ST_KEYS_SID] = "SELECT stanza_id FROM messages WHERE stanza_id > ?"
		" ORDER BY stanza_id LIMIT " STR(KEYS_CHUNK),
	[ST_KEYS_ORIGIN] = "SELECT origin_key FROM messages WHERE origin_key > ?"
		" ORDER BY origin_key LIMIT " STR(KEYS_CHUNK),
	[ST_LOG_SPAN] = "SELECT (SELECT max(seq) FROM messages) -"
		" (SELECT min(seq) FROM messages) + 1",
};

/* A message of the log waiting for its INSERT: m's strings point into
 * text, a copy of them all. */
struct log_row {
	struct store_msg m;
	int64_t time;
	char *text;
};

/* A caller waiting for the commit. */
struct waiter {
	store_done_cb cb;
	void *ud;
	char *error;		/* decided: NULL ok, else why not */
	bool decided;
};

struct store {
	uv_loop_t *loop;
	bool enabled;
	bool fsync;		/* [store] fsync: sends wait for the disk */
	bool need_sync;		/* this turn holds what a reply waits for */
	int wal_fd;		/* the -wal file, for fdatasync; -1 */
	char *path;
	char *error;		/* why it is unusable, or NULL */
	char *last_error;	/* the last commit failure, even if past */
	bool open_failed;	/* error is permanent */
	sqlite3 *db;
	sqlite3_stmt *stmts[NSTMTS];
	unsigned retention_days;

	bool in_txn;
	char *txn_error;	/* a write of this transaction failed */
	struct waiter *waiters;
	size_t nwaiters, waitcap;

	uint64_t seq_start;
	uint64_t seq_reserved;

	/* Log rows of this transaction not yet inserted: they go in
	 * LOG_BATCH at a time (one statement costs less than its rows
	 * did one by one), the rest before anything reads the log and
	 * before the commit. */
	struct log_row *rows;
	size_t nrows;

	/* A Bloom filter of the log's dedup keys (stanza ids and origin
	 * keys): a key it lacks is not in the log, without a query. It is
	 * built off the critical path, KEYS_CHUNK keys per idle callback
	 * along the stanza_id index and then the origin_key one; until
	 * it is complete (keys_ready) every lookup asks SQLite. Keys
	 * logged meanwhile are added at once, wherever the scan is. */
	uint64_t *keys;
	size_t keys_bits;	/* a power of two */
	size_t keys_added;
	bool keys_ready;	/* holds every key of the log */
	int keys_phase;		/* scanning 0: stanza ids, 1: origin keys */
	char *keys_after;	/* the last key scanned in this phase */
	uv_idle_t keys_idle;

	/* The retention pruning, PRUNE_CHUNK seqs per idle callback from
	 * prune_at to prune_end (the log's last seq when it began), in a
	 * transaction each; whatever reads the log finishes it first. */
	bool prune_pending;
	int64_t prune_before;	/* rows older than this go */
	int64_t prune_at, prune_end;	/* seqs, signed as SQLite's */
	long prune_count;
	uv_idle_t prune_idle;

	void (*precommit)(void *ud);
	void *precommit_ud;

	struct store_ckpt *ckpt;	/* checkpoints off the loop thread */
	uv_check_t committer;
	uv_timer_t pruner;
	int handles;		/* not yet closed */
	bool stopping;		/* handles closing: commits wait for close */
	bool closed;		/* store_close ran: free with the last handle */
};

/* ---- helpers ---- */

int64_t store_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_error(struct store *s, const char *fmt, const char *what)
{
	free(s->error);
	s->error = xasprintf(fmt, what);
}

static const char *db_error(const struct store *s)
{
	return s->db != NULL ? sqlite3_errmsg(s->db) : "no database";
}

static bool usable(const struct store *s)
{
	return s->enabled && !s->open_failed && s->db != NULL;
}

static sqlite3_stmt *stmt(struct store *s, enum stmt which)
{
	sqlite3_stmt *st = s->stmts[which];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL) {
		sqlite3_bind_null(st, i);
	} else {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	}
}

/* Binds v without a copy: only for strings that outlive the step (the
 * next stmt() clears the binding before anything else runs it). */
static void bind_static(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL) {
		sqlite3_bind_null(st, i);
	} else {
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	}
}

/* ---- opening ---- */

static char *default_path(const struct config *cfg, const char *bare_jid)
{
	if (cfg->store_path != NULL) {
		return xstrdup(cfg->store_path);
	}
	char *dir = state_dir(cfg);
	if (dir == NULL) {
		return NULL;
	}
	char *path = xasprintf("%s/%s.db", dir, bare_jid);
	free(dir);
	return path;
}

/* The file exists with mode 0600 before SQLite opens it, so the
 * messages are never readable by others, not even for a moment. */
static bool create_private(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		state_make_dirs(dir);
	}
	free(dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		return false;
	}
	fchmod(fd, 0600);
	close(fd);
	return true;
}

static bool exec_sql(struct store *s, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		set_error(s, "%s", msg ? msg : db_error(s));
		sqlite3_free(msg);
		return false;
	}
	return true;
}

static int user_version(struct store *s)
{
	sqlite3_stmt *st;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) ==
			SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

/* An event line whose seq is old, with new instead (caller frees); NULL
 * when the line does not start with it. */
static char *reseq_line(const char *line, uint64_t old, uint64_t new)
{
	static const char *const prefixes[] = {
		"{\"seq\":", "{\"event\":\"message\",\"seq\":",
	};
	char num[32];
	int n = snprintf(num, sizeof(num), "%ju", (uintmax_t)old);
	for (size_t i = 0; i < 2; i++) {
		size_t p = strlen(prefixes[i]);
		if (strncmp(line, prefixes[i], p) == 0 &&
				strncmp(line + p, num, (size_t)n) == 0 &&
				(line[p + n] == ',' || line[p + n] == '}')) {
			return xasprintf("%.*s%ju%s", (int)p, line, (uintmax_t)new,
				line + p + n);
		}
	}
	return NULL;
}

/* Copies one row of the old table to messages3 at the first free seq
 * from at (its line says so too); returns the seq it took, 0 if it
 * failed. */
static uint64_t move_row(struct store *s, sqlite3_stmt *from,
	sqlite3_stmt *to, uint64_t at)
{
	uint64_t old = (uint64_t)sqlite3_column_int64(from, 0);
	const char *line = (const char *)sqlite3_column_text(from, 9);
	for (;; at++) {
		sqlite3_reset(to);
		sqlite3_bind_int64(to, 1, (sqlite3_int64)at);
		for (int i = 1; i < 9; i++) {
			sqlite3_bind_value(to, i + 1, sqlite3_column_value(from, i));
		}
		char *fixed = line ? reseq_line(line, old, at) : NULL;
		if (fixed != NULL) {
			sqlite3_bind_text(to, 10, fixed, -1, SQLITE_TRANSIENT);
		} else {
			sqlite3_bind_value(to, 10, sqlite3_column_value(from, 9));
		}
		free(fixed);
		int rc = sqlite3_step(to);
		if (rc == SQLITE_DONE) {
			return at;
		}
		if (rc != SQLITE_CONSTRAINT_PRIMARYKEY) {
			set_error(s, "%s", db_error(s));
			return 0;
		}
	}
}

/*
 * Step 3's rows that do not keep their seq: before it, an outbound
 * message took the seq of the last event (shared with that event's row
 * or other sends). Each, in the old order, takes the first free seq
 * above the old one (and above the previous such row's); its line
 * follows. Rows that came later may then precede it: no integer lies
 * between two seqs in use. Then the new table replaces the old.
 */
static bool seq_as_key(struct store *s)
{
	sqlite3_stmt *from = NULL, *to = NULL;
	bool ok = sqlite3_prepare_v2(s->db, "SELECT seq, outbound, sender, peer,"
		" type, stanza_id, origin_key, msg_id, time, event FROM messages"
		" AS m WHERE NOT " FIRST_OF_SEQ " ORDER BY seq, rowid", -1, &from,
		NULL) == SQLITE_OK && sqlite3_prepare_v2(s->db, "INSERT INTO"
		" messages3 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &to,
		NULL) == SQLITE_OK;
	uint64_t last = 0;
	int rc = SQLITE_DONE;
	while (ok && (rc = sqlite3_step(from)) == SQLITE_ROW) {
		uint64_t at = (uint64_t)sqlite3_column_int64(from, 0) + 1;
		last = move_row(s, from, to, at > last + 1 ? at : last + 1);
		ok = last != 0;
	}
	if (ok && rc != SQLITE_DONE) {
		set_error(s, "%s", db_error(s));
		ok = false;
	}
	sqlite3_finalize(from);
	sqlite3_finalize(to);
	return ok && exec_sql(s, "DROP TABLE messages;"
		"ALTER TABLE messages3 RENAME TO messages;"
		"CREATE INDEX messages_peer ON messages (peer);"
		"CREATE INDEX messages_stanza_id ON messages (stanza_id)"
		" WHERE stanza_id IS NOT NULL;"
		"CREATE INDEX messages_origin ON messages (origin_key)"
		" WHERE origin_key IS NOT NULL;");
}

/* Runs the migration steps the file lacks, each in its transaction. */
static bool migrate(struct store *s)
{
	int v = user_version(s);
	if (v < 0) {
		set_error(s, "%s", db_error(s));
		return false;
	}
	if (v > SCHEMA_VERSION) {
		free(s->error);
		s->error = xasprintf("schema version %d is newer than this xmppd's "
			"(%d)", v, SCHEMA_VERSION);
		return false;
	}
	for (; v < SCHEMA_VERSION; v++) {
		const struct migration *m = &migrations[v];
		char *done = xasprintf("PRAGMA user_version = %d; COMMIT;", v + 1);
		bool ok = exec_sql(s, "BEGIN") &&
			(m->sql == NULL || exec_sql(s, m->sql)) &&
			(m->fn == NULL || m->fn(s)) && exec_sql(s, done);
		free(done);
		if (!ok) {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return false;
		}
		log_info("store: schema version %d", v + 1);
	}
	return true;
}

static bool prepare_all(struct store *s)
{
	for (int i = 0; i < NSTMTS; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
				SQLITE_PREPARE_PERSISTENT, &s->stmts[i], NULL) != SQLITE_OK) {
			set_error(s, "%s", db_error(s));
			return false;
		}
	}
	return true;
}

static bool open_db(struct store *s)
{
	if (!create_private(s->path)) {
		free(s->error);
		s->error = xasprintf("%s: %s", s->path, strerror(errno));
		return false;
	}
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
			SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		set_error(s, "%s", db_error(s));
		return false;
	}
	sqlite3_busy_timeout(s->db, BUSY_MS);
	sqlite3_extended_result_codes(s->db, 1);
	/* A corrupt file fails here already: the journal mode is read
	 * from its header. */
	return exec_sql(s, "PRAGMA journal_mode = WAL;") &&
		exec_sql(s, "PRAGMA synchronous = NORMAL") &&
		exec_sql(s, "PRAGMA cache_size = -" STR(CACHE_KIB)) &&
		exec_sql(s, "SELECT count(*) FROM sqlite_schema") &&
		migrate(s) && prepare_all(s);
}

/* ---- meta ---- */

static char *meta_get(struct store *s, const char *key)
{
	sqlite3_stmt *st = stmt(s, ST_META_GET);
	bind_text(st, 1, key);
	char *v = NULL;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		v = t ? xstrdup(t) : NULL;
	}
	sqlite3_reset(st);
	return v;
}

static bool meta_set(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *st = stmt(s, ST_META_SET);
	bind_text(st, 1, key);
	bind_text(st, 2, value);
	bool ok = sqlite3_step(st) == SQLITE_DONE;
	sqlite3_reset(st);
	return ok;
}

/* ---- the group commit ---- */

/*
 * Only a turn that holds something a reply waits for (an accepted
 * message) must reach the disk before the reply. SQLite runs with
 * synchronous = NORMAL (WAL: a commit is written, not synced; safe from
 * a crash of the daemon), and such a turn's commit is followed by an
 * fdatasync of the WAL file, which is what synchronous = FULL would do
 * (it cannot be switched inside a transaction). Other turns (inbound
 * messages, acks, counters) reach the disk with the next synced commit
 * or checkpoint, and cost no fsync: a daemon that only receives must
 * keep reading at the pace of its server.
 */
static void sync_wal(struct store *s)
{
	if (s->wal_fd < 0) {
		char *wal = xasprintf("%s-wal", s->path);
		s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
		free(wal);
	}
	if (s->wal_fd < 0 || fdatasync(s->wal_fd) < 0) {
		free(s->last_error);
		s->last_error = xasprintf("cannot sync the write-ahead log: %s",
			strerror(errno));
		log_error("store: %s: %s", s->path, s->last_error);
	}
}

static void begin(struct store *s);
static void flush_log(struct store *s);
static void drop_rows(struct store *s);

/* Commits the open transaction now; its waiters' outcome is decided
 * (they are told at the end of the turn). */
static void commit(struct store *s)
{
	if (!s->in_txn) {
		return;
	}
	flush_log(s);
	if (s->precommit != NULL && s->txn_error == NULL) {
		s->precommit(s->precommit_ud);
	}
	s->in_txn = false;
	char *err = s->txn_error;
	s->txn_error = NULL;
	bool sync = s->fsync && s->need_sync;
	s->need_sync = false;
	if (err == NULL) {
		sqlite3_stmt *st = stmt(s, ST_COMMIT);
		if (sqlite3_step(st) != SQLITE_DONE) {
			err = xasprintf("commit failed: %s", db_error(s));
		} else if (sync) {
			sync_wal(s);
		}
		sqlite3_reset(st);
	}
	if (err != NULL) {
		if (!sqlite3_get_autocommit(s->db)) {
			sqlite3_stmt *st = stmt(s, ST_ROLLBACK);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
		log_error("store: %s: %s; the turn's writes are rolled back",
			s->path, err);
		free(s->error);
		s->error = xstrdup(err);
		free(s->last_error);
		s->last_error = xstrdup(err);
	} else if (s->error != NULL && !s->open_failed) {
		log_info("store: %s: commits work again", s->path);
		free(s->error);
		s->error = NULL;
	}
	for (size_t i = 0; i < s->nwaiters; i++) {
		if (!s->waiters[i].decided) {
			s->waiters[i].decided = true;
			s->waiters[i].error = err ? xstrdup(err) : NULL;
		}
	}
	free(err);
}

/* The end of the loop turn: commit, then tell everyone who waits. */
static void committer_cb(uv_check_t *h)
{
	struct store *s = h->data;
	commit(s);
	struct waiter *w = s->waiters;
	size_t n = s->nwaiters;
	s->waiters = NULL;
	s->nwaiters = s->waitcap = 0;
	if (!s->stopping) {
		uv_check_stop(&s->committer);
	}
	for (size_t i = 0; i < n; i++) {
		w[i].cb(w[i].ud, w[i].error);
		free(w[i].error);
	}
	free(w);
}

static void begin(struct store *s)
{
	if (s->in_txn) {
		return;
	}
	sqlite3_stmt *st = stmt(s, ST_BEGIN);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	s->in_txn = true;
	if (rc != SQLITE_DONE) {
		free(s->txn_error);
		s->txn_error = xasprintf("cannot begin a transaction: %s",
			db_error(s));
	}
	if (!s->stopping) {
		uv_check_start(&s->committer, committer_cb);
	}
}

/* A write of the current transaction failed: it will be rolled back. */
static void write_failed(struct store *s, const char *what)
{
	if (s->txn_error == NULL) {
		s->txn_error = xasprintf("%s: %s", what, db_error(s));
	}
}

void store_touch(struct store *s)
{
	if (usable(s)) {
		begin(s);
	}
}

void store_set_precommit(struct store *s, void (*cb)(void *ud), void *ud)
{
	s->precommit = cb;
	s->precommit_ud = ud;
}

void store_when_committed(struct store *s, store_done_cb cb, void *ud)
{
	s->waiters = xgrow(s->waiters, &s->waitcap, s->nwaiters + 1,
		sizeof(*s->waiters));
	s->waiters[s->nwaiters++] = (struct waiter){ .cb = cb, .ud = ud };
	if (!s->stopping) {
		uv_check_start(&s->committer, committer_cb);
	}
}

/* ---- seq reservation ---- */

/* Persists a new mark outside any group: what is pending commits first
 * (its waiters are still told at the end of the turn). */
static bool reserve(struct store *s, uint64_t upto)
{
	commit(s);
	char v[32];
	snprintf(v, sizeof(v), "%ju", (uintmax_t)upto);
	if (!meta_set(s, "seq_reserved", v)) {
		log_error("store: %s: cannot reserve event numbers: %s; after a "
			"crash they could repeat", s->path, db_error(s));
		return false;
	}
	s->seq_reserved = upto;
	return true;
}

static void reserve_cb(void *ud, uint64_t last)
{
	struct store *s = ud;
	if (reserve(s, last + SEQ_BLOCK)) {
		events_set_limit(s->seq_reserved, reserve_cb, s);
	} else {
		events_set_limit(last + SEQ_BLOCK, reserve_cb, s);
	}
}

static void start_seq(struct store *s)
{
	char *v = meta_get(s, "seq_reserved");
	s->seq_start = v ? strtoull(v, NULL, 10) : 0;
	free(v);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT max(seq) FROM messages", -1, &st,
			NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		uint64_t top = (uint64_t)sqlite3_column_int64(st, 0);
		s->seq_start = top > s->seq_start ? top : s->seq_start;
	}
	sqlite3_finalize(st);
	events_set_last_seq(s->seq_start);
	reserve_cb(s, s->seq_start);
}

/* ---- retention ---- */

/* Starts pruning the rows older than the retention, in the
 * background (prune_idle_cb); the log's readers finish it first. */
static void prune(struct store *s)
{
	if (!usable(s) || s->retention_days == 0 || s->prune_pending) {
		return;
	}
	sqlite3_stmt *st = stmt(s, ST_LOG_ENDS);
	int64_t first = 0, last = 0;
	bool rows = false;
	if (sqlite3_step(st) == SQLITE_ROW &&
			sqlite3_column_type(st, 1) != SQLITE_NULL) {
		first = sqlite3_column_int64(st, 0);
		last = sqlite3_column_int64(st, 1);
		rows = true;
	}
	sqlite3_reset(st);
	if (!rows) {
		return;
	}
	s->prune_before = store_wall_ms() -
		(int64_t)s->retention_days * 86400 * 1000;
	s->prune_at = first - 1;
	s->prune_end = last;
	s->prune_count = 0;
	s->prune_pending = true;
	if (!s->stopping) {
		uv_idle_start(&s->prune_idle, prune_idle_cb);
	}
}

/* Prunes the next PRUNE_CHUNK seqs, in the turn's transaction. */
static void prune_chunk(struct store *s)
{
	int64_t to = s->prune_at + PRUNE_CHUNK;
	to = to < s->prune_end ? to : s->prune_end;
	sqlite3_stmt *st = stmt(s, ST_PRUNE_MAX);
	sqlite3_bind_int64(st, 1, s->prune_at);
	sqlite3_bind_int64(st, 2, to);
	sqlite3_bind_int64(st, 3, s->prune_before);
	uint64_t top = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		top = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (top != 0) {
		begin(s);
		st = stmt(s, ST_PRUNE);
		sqlite3_bind_int64(st, 1, s->prune_at);
		sqlite3_bind_int64(st, 2, to);
		sqlite3_bind_int64(st, 3, s->prune_before);
		if (sqlite3_step(st) != SQLITE_DONE) {
			write_failed(s, "pruning");
		}
		sqlite3_reset(st);
		s->prune_count += sqlite3_changes(s->db);
		char v[32];
		snprintf(v, sizeof(v), "%ju", (uintmax_t)top);
		if (meta_pruned_upto(s) < top && !meta_set(s, "pruned_upto", v)) {
			write_failed(s, "pruning");
		}
	}
	s->prune_at = to;
	if (to >= s->prune_end) {
		s->prune_pending = false;
		uv_idle_stop(&s->prune_idle);
		if (s->prune_count > 0) {
			log_info("store: pruned %ld messages older than %u days",
				s->prune_count, s->retention_days);
		}
	}
}

static void prune_idle_cb(uv_idle_t *h)
{
	struct store *s = h->data;
	if (!usable(s)) {
		s->prune_pending = false;
		uv_idle_stop(h);
		return;
	}
	prune_chunk(s);
}

/* Finishes the pruning begun, before anything reads the log. */
static void prune_finish(struct store *s)
{
	while (s->prune_pending && usable(s)) {
		prune_chunk(s);
	}
	s->prune_pending = false;
}

static void pruner_cb(uv_timer_t *t)
{
	prune(t->data);
}

/* ---- open and close ---- */

struct store *store_open(uv_loop_t *loop, const struct config *cfg,
	const char *bare_jid)
{
	struct store *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->enabled = cfg->store_enabled;
	s->fsync = cfg->store_fsync;
	s->wal_fd = -1;
	s->retention_days = cfg->store_retention;
	uv_check_init(loop, &s->committer);
	uv_timer_init(loop, &s->pruner);
	uv_idle_init(loop, &s->keys_idle);
	uv_idle_init(loop, &s->prune_idle);
	s->committer.data = s->pruner.data = s->keys_idle.data = s;
	s->prune_idle.data = s;
	s->handles = 4;
	if (!s->enabled) {
		log_info("store: disabled; messages are kept in memory only");
		return s;
	}
	s->path = default_path(cfg, bare_jid);
	if (s->path == NULL) {
		s->error = xstrdup("no state directory (set HOME or [store] path)");
	} else if (open_db(s)) {
		log_info("store: %s", s->path);
		s->ckpt = store_ckpt_start(loop, s->db, s->path);
		start_seq(s);
		keys_build(s, log_span(s) * 3 / 2);
		prune(s);
		uv_timer_start(&s->pruner, pruner_cb, PRUNE_MS, PRUNE_MS);
		uv_unref((uv_handle_t *)&s->pruner);
		return s;
	}
	s->open_failed = true;
	log_error("store: cannot use %s: %s; sends are refused until it is "
		"repaired or moved away", s->path ? s->path : "(none)", s->error);
	for (int i = 0; i < NSTMTS; i++) {
		sqlite3_finalize(s->stmts[i]);
		s->stmts[i] = NULL;
	}
	sqlite3_close(s->db);
	s->db = NULL;
	return s;
}

static void store_free(struct store *s)
{
	drop_rows(s);
	free(s->rows);
	free(s->keys);
	free(s->keys_after);
	free(s->path);
	free(s->error);
	free(s->last_error);
	free(s);
}

static void handle_closed(uv_handle_t *h)
{
	struct store *s = h->data;
	if (--s->handles == 0 && s->closed) {
		store_free(s);
	}
}

void store_stop(struct store *s)
{
	if (s == NULL || s->stopping) {
		return;
	}
	s->stopping = true;
	uv_close((uv_handle_t *)&s->committer, handle_closed);
	uv_close((uv_handle_t *)&s->pruner, handle_closed);
	uv_close((uv_handle_t *)&s->keys_idle, handle_closed);
	uv_close((uv_handle_t *)&s->prune_idle, handle_closed);
}

void store_close(struct store *s)
{
	if (s == NULL) {
		return;
	}
	store_stop(s);
	if (usable(s)) {
		commit(s);
		events_set_limit(0, NULL, NULL);
	}
	for (size_t i = 0; i < s->nwaiters; i++) {
		struct waiter *w = &s->waiters[i];
		w->cb(w->ud, w->decided ? w->error : "the daemon is stopping");
		free(w->error);
	}
	free(s->waiters);
	free(s->txn_error);
	for (int i = 0; i < NSTMTS; i++) {
		sqlite3_finalize(s->stmts[i]);
	}
	store_ckpt_stop(s->ckpt);
	s->ckpt = NULL;
	if (s->wal_fd >= 0) {
		close(s->wal_fd);
		s->wal_fd = -1;
	}
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK) {
		log_warnx("store: %s: close: %s", s->path, db_error(s));
	}
	s->db = NULL;
	s->closed = true;
	if (s->handles == 0) {
		store_free(s);
	}
}

bool store_enabled(const struct store *s)
{
	return s->enabled;
}

const char *store_error(const struct store *s)
{
	return s->enabled ? s->error : NULL;
}

void store_status(const struct store *s, json_t *o)
{
	json_t *st = json_object();
	json_object_set_new(st, "enabled", json_boolean(s->enabled));
	if (s->path != NULL) {
		json_object_set_new(st, "path", json_string(s->path));
	}
	if (s->enabled) {
		json_object_set_new(st, "ok", json_boolean(s->error == NULL));
	}
	if (s->enabled && s->error != NULL) {
		json_object_set_new(st, "error", json_string(s->error));
	}
	if (s->last_error != NULL) {
		json_object_set_new(st, "last_error", json_string(s->last_error));
	}
	json_object_set_new(o, "store", st);
}

uint64_t store_seq_start(const struct store *s)
{
	return s->seq_start;
}

/* ---- outbox ---- */

int64_t store_outbox_add(struct store *s, const char *msg_id, const char *to,
	const char *stanza, int64_t accepted_ms)
{
	if (!usable(s)) {
		return 0;
	}
	begin(s);
	if (s->txn_error != NULL) {
		return 0;
	}
	sqlite3_stmt *st = stmt(s, ST_OUTBOX_ADD);
	bind_text(st, 1, msg_id);
	bind_text(st, 2, to);
	bind_text(st, 3, stanza);
	sqlite3_bind_int64(st, 4, accepted_ms);
	s->need_sync = true;
	int64_t id = 0;
	if (sqlite3_step(st) == SQLITE_DONE) {
		id = sqlite3_last_insert_rowid(s->db);
	} else {
		write_failed(s, "outbox");
	}
	sqlite3_reset(st);
	return id;
}

void store_outbox_remove(struct store *s, int64_t rowid)
{
	if (!usable(s) || rowid <= 0) {
		return;
	}
	begin(s);
	sqlite3_stmt *st = stmt(s, ST_OUTBOX_DEL);
	sqlite3_bind_int64(st, 1, rowid);
	if (sqlite3_step(st) != SQLITE_DONE) {
		write_failed(s, "outbox removal");
	}
	sqlite3_reset(st);
}

void store_outbox_load(struct store *s, store_outbox_cb cb, void *ud)
{
	if (!usable(s)) {
		return;
	}
	sqlite3_stmt *st = stmt(s, ST_OUTBOX_ALL);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cb(ud, sqlite3_column_int64(st, 0),
			(const char *)sqlite3_column_text(st, 1),
			(const char *)sqlite3_column_text(st, 2),
			(const char *)sqlite3_column_text(st, 3),
			sqlite3_column_int64(st, 4));
	}
	sqlite3_reset(st);
}

/* ---- meta, for others ---- */

char *store_meta_get(struct store *s, const char *key)
{
	return usable(s) ? meta_get(s, key) : NULL;
}

bool store_meta_set(struct store *s, const char *key, const char *value)
{
	if (!usable(s)) {
		return false;
	}
	begin(s);
	if (!meta_set(s, key, value)) {
		write_failed(s, key);
		return false;
	}
	return true;
}

static uint64_t meta_pruned_upto(struct store *s)
{
	char *v = store_meta_get(s, "pruned_upto");
	uint64_t n = v ? strtoull(v, NULL, 10) : 0;
	free(v);
	return n;
}

uint64_t store_pruned_upto(struct store *s)
{
	if (usable(s)) {
		prune_finish(s);
	}
	return meta_pruned_upto(s);
}

/* ---- the dedup keys' Bloom filter ---- */

/* FNV-1a of kind and key; two halves give the probes. */
static uint64_t key_hash(char kind, const char *key)
{
	uint64_t h = 0xcbf29ce484222325u;
	h = (h ^ (unsigned char)kind) * 0x100000001b3u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h = (h ^ *p) * 0x100000001b3u;
	}
	return h ^ (h >> 29);
}

static void keys_set(struct store *s, char kind, const char *key)
{
	uint64_t h = key_hash(kind, key);
	uint64_t step = (h >> 32) | 1;
	for (int i = 0; i < KEYS_PROBES; i++, h += step) {
		size_t b = (size_t)h & (s->keys_bits - 1);
		s->keys[b / 64] |= (uint64_t)1 << (b % 64);
	}
	s->keys_added++;
}

/* False: certainly not in the log. */
static bool keys_maybe(const struct store *s, char kind, const char *key)
{
	if (s->keys == NULL || !s->keys_ready) {
		return true;
	}
	uint64_t h = key_hash(kind, key);
	uint64_t step = (h >> 32) | 1;
	for (int i = 0; i < KEYS_PROBES; i++, h += step) {
		size_t b = (size_t)h & (s->keys_bits - 1);
		if ((s->keys[b / 64] & ((uint64_t)1 << (b % 64))) == 0) {
			return false;
		}
	}
	return true;
}

/* Is the filter too full (past KEYS_BITS_PER_KEY / 2 bits per key:
 * about 5% false positives with 4 probes) and still allowed to grow? */
static bool keys_full(const struct store *s)
{
	return s->keys_added > s->keys_bits / (KEYS_BITS_PER_KEY / 2) &&
		s->keys_bits < KEYS_MAX_BITS;
}

/* How many rows the log spans by seq (at least as many as it holds),
 * from the rowid's two ends: no scan. */
static size_t log_span(struct store *s)
{
	sqlite3_stmt *st = stmt(s, ST_LOG_SPAN);
	size_t n = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		sqlite3_int64 v = sqlite3_column_int64(st, 0);
		n = v > 0 ? (size_t)v : 0;
	}
	sqlite3_reset(st);
	return n;
}

/* Starts (re)building the filter from the log, with KEYS_BITS_PER_KEY
 * bits or more per key it will hold (expect: how many, roughly; the
 * open expects 1.5 per row spanned, so that even two per row never make
 * it rebuild). Past KEYS_MAX_BITS it fills up: more keys are asked for
 * nothing, none is missed. */
static void keys_build(struct store *s, size_t expect)
{
	free(s->keys);
	size_t bits = KEYS_MIN_BITS;
	while (bits / KEYS_BITS_PER_KEY < expect && bits < KEYS_MAX_BITS) {
		bits *= 2;
	}
	s->keys_bits = bits;
	s->keys_added = 0;
	s->keys = xcalloc(bits / 64, sizeof(uint64_t));
	s->keys_ready = false;
	s->keys_phase = 0;
	free(s->keys_after);
	s->keys_after = xstrdup("");
	if (!s->stopping) {
		uv_idle_start(&s->keys_idle, keys_idle_cb);
	}
}

/* The log cannot be read: no filter, every key is asked. */
static void keys_drop(struct store *s)
{
	log_warnx("store: %s: cannot read the dedup keys: %s", s->path,
		db_error(s));
	free(s->keys);
	s->keys = NULL;
	uv_idle_stop(&s->keys_idle);
}

/* Adds the next chunk of keys of this phase's index, those after
 * keys_after; true when the phase has read its last one. */
static bool keys_chunk(struct store *s)
{
	sqlite3_stmt *st = stmt(s, s->keys_phase == 0 ? ST_KEYS_SID :
		ST_KEYS_ORIGIN);
	bind_static(st, 1, s->keys_after);
	char kind = s->keys_phase == 0 ? 's' : 'o';
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		if (k != NULL) {
			keys_set(s, kind, k);
		}
		if (++n == KEYS_CHUNK) {	/* the last: where the next starts */
			char *next = xstrdup(k != NULL ? k : "");
			sqlite3_reset(st);	/* no read transaction left open */
			free(s->keys_after);
			s->keys_after = next;
			return false;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		keys_drop(s);
	}
	return true;
}

/* One step of the filter's build, between the loop's turns. */
static void keys_idle_cb(uv_idle_t *h)
{
	struct store *s = h->data;
	if (!usable(s) || s->keys == NULL) {
		uv_idle_stop(h);
		return;
	}
	if (!keys_chunk(s) || s->keys == NULL) {
		return;	/* more to read, or no filter */
	}
	if (++s->keys_phase < 2) {
		free(s->keys_after);
		s->keys_after = xstrdup("");
		return;
	}
	uv_idle_stop(h);
	if (keys_full(s)) {
		keys_build(s, s->keys_added);	/* more than expected */
	} else {
		s->keys_ready = true;
	}
}

/* Adds a logged message's keys; a filter grown too full is rebuilt
 * (at least twice as large). */
static void keys_add(struct store *s, const struct store_msg *m)
{
	if (s->keys == NULL) {
		return;
	}
	if (m->stanza_id != NULL && m->stanza_id[0] != '\0') {
		keys_set(s, 's', m->stanza_id);
	}
	if (m->origin_key != NULL && m->origin_key[0] != '\0') {
		keys_set(s, 'o', m->origin_key);
	}
	if (keys_full(s)) {
		keys_build(s, s->keys_added);
	}
}

/* ---- the message log ---- */

/* Copies m's strings into one block the row owns. */
static void row_copy(struct log_row *r, const struct store_msg *m)
{
	const char *src[] = { m->sender, m->peer, m->type, m->stanza_id,
		m->origin_key, m->msg_id, m->event };
	size_t len[7], total = 0;
	for (int i = 0; i < 7; i++) {
		len[i] = src[i] ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	char *p = r->text = xmalloc(total ? total : 1);
	const char *dst[7];
	for (int i = 0; i < 7; i++) {
		dst[i] = src[i] ? memcpy(p, src[i], len[i]) : NULL;
		p += len[i];
	}
	r->m = (struct store_msg){ .seq = m->seq, .outbound = m->outbound,
		.sender = dst[0], .peer = dst[1], .type = dst[2],
		.stanza_id = dst[3], .origin_key = dst[4], .msg_id = dst[5],
		.event = dst[6] };
}

static void bind_row(sqlite3_stmt *st, int at, const struct log_row *r)
{
	const struct store_msg *m = &r->m;
	sqlite3_bind_int64(st, at + 1, (sqlite3_int64)m->seq);
	sqlite3_bind_int(st, at + 2, m->outbound);
	bind_static(st, at + 3, m->sender);
	bind_static(st, at + 4, m->peer);
	bind_static(st, at + 5, m->type);
	bind_static(st, at + 6, m->stanza_id);
	bind_static(st, at + 7, m->origin_key);
	bind_static(st, at + 8, m->msg_id);
	sqlite3_bind_int64(st, at + 9, r->time);
	bind_static(st, at + 10, m->event);
}

/* Inserts n rows from r with one statement (n is 1 or LOG_BATCH). */
static void insert_rows(struct store *s, const struct log_row *r, size_t n)
{
	sqlite3_stmt *st = stmt(s, n == 1 ? ST_LOG_ADD : ST_LOG_ADD_BATCH);
	for (size_t i = 0; i < n; i++) {
		bind_row(st, (int)i * 10, &r[i]);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		write_failed(s, "message log");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);	/* the copies go next */
}

static void drop_rows(struct store *s)
{
	for (size_t i = 0; i < s->nrows; i++) {
		free(s->rows[i].text);
	}
	s->nrows = 0;
}

/* Inserts the rows waiting (in a failed transaction: drops them). */
static void flush_log(struct store *s)
{
	size_t i = 0;
	if (s->txn_error == NULL) {
		for (; i + LOG_BATCH <= s->nrows; i += LOG_BATCH) {
			insert_rows(s, &s->rows[i], LOG_BATCH);
		}
		for (; i < s->nrows; i++) {
			insert_rows(s, &s->rows[i], 1);
		}
	}
	drop_rows(s);
}

bool store_log_message(struct store *s, const struct store_msg *m)
{
	if (!usable(s)) {
		return false;
	}
	begin(s);
	if (s->txn_error != NULL) {
		return false;
	}
	if (s->rows == NULL) {
		s->rows = xcalloc(LOG_BATCH, sizeof(*s->rows));
	}
	struct log_row *r = &s->rows[s->nrows++];
	row_copy(r, m);
	r->time = store_wall_ms();
	keys_add(s, &r->m);
	if (s->nrows == LOG_BATCH) {
		flush_log(s);
	}
	return true;
}

static bool known(struct store *s, enum stmt which, const char *key)
{
	if (key == NULL || key[0] == '\0' ||
			!keys_maybe(s, which == ST_KNOWN_SID ? 's' : 'o', key)) {
		return false;
	}
	flush_log(s);
	sqlite3_stmt *st = stmt(s, which);
	bind_static(st, 1, key);
	bool found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return found;
}

bool store_message_known(struct store *s, const char *stanza_id,
	const char *origin_key)
{
	if (!usable(s)) {
		return false;
	}
	return known(s, ST_KNOWN_SID, stanza_id) ||
		known(s, ST_KNOWN_ORIGIN, origin_key);
}

static char *query_sql(const struct store_query *q)
{
	return xasprintf("SELECT seq, outbound, event FROM messages WHERE seq > ?1"
		"%s%s%s%s ORDER BY seq %s LIMIT ?5",
		q->upto ? " AND seq <= ?2" : "",
		q->sender ? " AND sender = ?3" : "",
		q->peer ? " AND peer = ?4" : "",
		q->inbound_only ? " AND outbound = 0" : "",
		q->newest ? "DESC" : "ASC");
}

int store_log_read(struct store *s, const struct store_query *q,
	store_row_cb cb, void *ud)
{
	if (!usable(s)) {
		return -1;
	}
	prune_finish(s);
	flush_log(s);
	char *sql = query_sql(q);
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		log_warnx("store: query: %s", db_error(s));
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)q->after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)q->upto);
	bind_text(st, 3, q->sender);
	bind_text(st, 4, q->peer);
	sqlite3_bind_int64(st, 5, q->max ? (sqlite3_int64)q->max : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ev = (const char *)sqlite3_column_text(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		if (!cb(ud, (uint64_t)sqlite3_column_int64(st, 0),
				sqlite3_column_int(st, 1) != 0, ev ? ev : "{}",
				ev ? len : 2)) {
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}
