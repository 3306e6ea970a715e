/*
 * daemon/store.c on a loop of its own, in a temporary directory: the
 * schema and its version, the file mode, group commit (one transaction
 * per loop turn, callers told after it), a failed turn rolled back whole,
 * the outbox and log read back after a reopen, seq reservation, and a
 * file that is not a database.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/store.h"
#include "proto/alloc.h"

static uv_loop_t loop;
static struct config cfg;
static char dir[64];
static char *path;

static void setup(void)
{
	strcpy(dir, "/tmp/xmppd-test-store-XXXXXX");
	cr_assert(ne(ptr, mkdtemp(dir), NULL));
	path = xasprintf("%s/sub/alice@example.org.db", dir);
	config_init(&cfg);
	cfg.store_path = xstrdup(path);
	cfg.store_enabled = true;
	cfg.store_fsync = false;
	cfg.store_retention = 365;
	cr_assert(eq(int, uv_loop_init(&loop), 0));
	events_init(0);
}

static void rm(const char *suffix)
{
	char *p = xasprintf("%s%s", path, suffix);
	unlink(p);
	free(p);
}

static void teardown(void)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect(eq(int, uv_loop_close(&loop), 0));
	events_finish();
	config_finish(&cfg);
	rm("");
	rm("-wal");
	rm("-shm");
	char *sub = xasprintf("%s/sub", dir);
	rmdir(sub);
	free(sub);
	rmdir(dir);
	free(path);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 30);

/* What the waiters heard. */
static int told;
static int told_ok;
static char last_error[256];

static void done_cb(void *ud, const char *error)
{
	told++;
	if (error == NULL) {
		told_ok++;
	} else {
		snprintf(last_error, sizeof(last_error), "%s", error);
	}
}

static int64_t add(struct store *s, const char *id)
{
	return store_outbox_add(s, id, "bob@example.org",
		"<message to='bob@example.org'/>", store_wall_ms());
}

static int rows(const char *table)
{
	sqlite3 *db;
	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	char *sql = xasprintf("SELECT count(*) FROM %s", table);
	sqlite3_stmt *st;
	int n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
			sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	return n;
}

Test(store, creates_a_private_versioned_database)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	cr_assert(eq(ptr, (void *)store_error(s), NULL));
	struct stat stb;
	cr_assert(eq(int, stat(path, &stb), 0));
	cr_expect(eq(int, (int)(stb.st_mode & 0777), 0600));
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW));
	cr_expect(eq(int, sqlite3_column_int(st, 0), 3));
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
	cr_assert(eq(int, sqlite3_step(st), SQLITE_ROW));
	cr_expect(eq(str, (char *)sqlite3_column_text(st, 0), "wal"));
	sqlite3_finalize(st);
	sqlite3_close(db);
	store_close(s);
}

Test(store, one_commit_per_turn_then_the_callers)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	told = told_ok = 0;
	for (int i = 0; i < 100; i++) {
		char id[16];
		snprintf(id, sizeof(id), "m%d", i);
		cr_assert(gt(i64, add(s, id), 0));
		store_when_committed(s, done_cb, NULL);
	}
	/* Nothing committed yet: another connection sees no rows. */
	cr_expect(eq(int, rows("outbox"), 0));
	cr_expect(eq(int, told, 0));
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect(eq(int, told, 100));
	cr_expect(eq(int, told_ok, 100));
	cr_expect(eq(int, rows("outbox"), 100));
	store_close(s);
}

static int loaded;

static void load_cb(void *ud, int64_t rowid, const char *msg_id,
	const char *to, const char *stanza, int64_t accepted_ms)
{
	char want[16];
	snprintf(want, sizeof(want), "m%d", loaded == 0 ? 1 : 2);
	cr_expect(eq(str, (char *)msg_id, want));
	cr_expect(eq(str, (char *)to, "bob@example.org"));
	loaded++;
}

Test(store, outbox_survives_a_reopen_minus_removed_rows)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	int64_t r0 = add(s, "m0");
	add(s, "m1");
	add(s, "m2");
	uv_run(&loop, UV_RUN_NOWAIT);
	store_outbox_remove(s, r0);
	store_close(s);
	s = store_open(&loop, &cfg, "alice@example.org");
	loaded = 0;
	store_outbox_load(s, load_cb, NULL);
	cr_expect(eq(int, loaded, 2));
	store_close(s);
}

Test(store, a_failed_write_rolls_back_the_whole_turn)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	told = told_ok = 0;
	add(s, "kept");
	store_when_committed(s, done_cb, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_assert(eq(int, told_ok, 1));
	/* Another connection holds the write lock: this turn cannot
	 * begin its transaction, and every write of it is refused. */
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_busy_timeout(db, 5000);
	cr_assert(eq(int, sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
		SQLITE_OK));
	cr_expect(eq(i64, add(s, "refused"), 0));
	store_when_committed(s, done_cb, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect(eq(int, told, 2));
	cr_expect(eq(int, told_ok, 1));
	cr_expect(ne(ptr, strstr(last_error, "locked"), NULL), "%s", last_error);
	cr_expect(ne(ptr, (void *)store_error(s), NULL));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	/* The next turn works again. */
	cr_expect(gt(i64, add(s, "later"), 0));
	store_when_committed(s, done_cb, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect(eq(int, told_ok, 2));
	cr_expect(eq(ptr, (void *)store_error(s), NULL));
	cr_expect(eq(int, rows("outbox"), 2));
	store_close(s);
}

Test(store, seq_starts_above_every_number_handed_out)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	cr_expect(eq(u64, events_last_seq(), 0));
	uint64_t last = 0;
	for (int i = 0; i < 25000; i++) {
		last = events_publish("test", json_object());
	}
	store_close(s);
	events_init(0);
	s = store_open(&loop, &cfg, "alice@example.org");
	cr_expect(ge(u64, events_last_seq(), last));
	cr_expect(ge(u64, store_seq_start(s), last));
	store_close(s);
}

static unsigned read_rows;

static bool row_cb(void *ud, uint64_t seq, bool outbound, const char *event,
	size_t len)
{
	cr_expect(eq(u64, seq, 10 + read_rows));
	read_rows++;
	return true;
}

Test(store, log_known_by_stanza_id_and_origin_key)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	for (int i = 0; i < 5; i++) {
		char sid[16], key[32];
		snprintf(sid, sizeof(sid), "s%d", i);
		snprintf(key, sizeof(key), "bob@example.org o %d", i);
		struct store_msg m = {
			.seq = 10 + (uint64_t)i, .sender = "bob@example.org",
			.peer = "bob@example.org", .type = "chat", .stanza_id = sid,
			.origin_key = key, .event = "{\"event\":\"message\"}",
		};
		cr_assert(store_log_message(s, &m));
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect(store_message_known(s, "s3", NULL));
	cr_expect(store_message_known(s, NULL, "bob@example.org o 4"));
	cr_expect(not(store_message_known(s, "s9", "bob@example.org o 9")));
	struct store_query q = { .after = 11, .peer = "bob@example.org" };
	read_rows = 2;
	cr_assert(eq(int, store_log_read(s, &q, row_cb, NULL), 0));
	cr_expect(eq(u32, read_rows, 5));
	store_close(s);
}

static unsigned batch_rows;

static bool batch_cb(void *ud, uint64_t seq, bool outbound, const char *event,
	size_t len)
{
	char want[32];
	snprintf(want, sizeof(want), "{\"seq\":%u}", 100 + batch_rows);
	cr_expect(eq(u64, seq, 100 + batch_rows));
	cr_expect(eq(str, (char *)event, want));
	batch_rows++;
	return true;
}

Test(store, rows_logged_in_batches_are_read_in_the_same_turn)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	for (unsigned i = 0; i < 37; i++) {
		char ev[32];
		snprintf(ev, sizeof(ev), "{\"seq\":%u}", 100 + i);
		struct store_msg m = { .seq = 100 + i, .sender = "bob@example.org",
			.peer = "bob@example.org", .event = ev };
		cr_assert(store_log_message(s, &m));
	}
	struct store_query q = { .after = 0 };
	batch_rows = 0;
	cr_assert(eq(int, store_log_read(s, &q, batch_cb, NULL), 0));
	cr_expect(eq(u32, batch_rows, 37));
	struct store_msg m = { .seq = 137, .sender = "bob@example.org",
		.peer = "bob@example.org", .event = "{\"seq\":137}" };
	cr_assert(store_log_message(s, &m));
	told = told_ok = 0;
	store_when_committed(s, done_cb, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect(eq(int, told_ok, 1));
	store_close(s);
	cr_expect(eq(int, rows("messages"), 38));
	s = store_open(&loop, &cfg, "alice@example.org");
	batch_rows = 0;
	cr_assert(eq(int, store_log_read(s, &q, batch_cb, NULL), 0));
	cr_expect(eq(u32, batch_rows, 38));
	store_close(s);
}

Test(store, every_logged_key_is_known_as_the_filter_grows)
{
	/* 2 x 6,000 keys pass what the first Bloom filter holds: it is
	 * rebuilt larger while the turn writes, and again at the reopen. */
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 6000; i++) {
			char sid[16], key[32];
			snprintf(sid, sizeof(sid), "s%d", i);
			snprintf(key, sizeof(key), "bob@example.org o %d", i);
			if (round == 0) {
				struct store_msg m = {
					.seq = 1 + (uint64_t)i, .sender = "bob@example.org",
					.peer = "bob@example.org", .stanza_id = sid,
					.origin_key = key, .event = "{}",
				};
				cr_assert(store_log_message(s, &m));
			}
			cr_assert(store_message_known(s, sid, NULL), "%s", sid);
			cr_assert(store_message_known(s, NULL, key), "%s", key);
		}
		unsigned unknown = 0;
		for (int i = 6000; i < 7000; i++) {
			char sid[16], key[32];
			snprintf(sid, sizeof(sid), "s%d", i);
			snprintf(key, sizeof(key), "bob@example.org o %d", i);
			unknown += !store_message_known(s, sid, key);
		}
		cr_expect(eq(u32, unknown, 1000));
		uv_run(&loop, UV_RUN_NOWAIT);
		store_close(s);
		s = store_open(&loop, &cfg, "alice@example.org");
	}
	store_close(s);
}

/* Are s0..s(n-1) and their origin keys known, s(n)..s(n+99) not? */
static void expect_keys(struct store *s, int n)
{
	for (int i = 0; i < n + 100; i++) {
		char sid[16], key[32];
		snprintf(sid, sizeof(sid), "s%d", i);
		snprintf(key, sizeof(key), "bob@example.org o %d", i);
		bool want = i < n;
		cr_assert(eq(int, store_message_known(s, sid, NULL), want), "%s", sid);
		cr_assert(eq(int, store_message_known(s, NULL, key), want), "%s", key);
	}
}

static void log_keys(struct store *s, int from, int to)
{
	for (int i = from; i < to; i++) {
		char sid[16], key[32];
		snprintf(sid, sizeof(sid), "s%d", i);
		snprintf(key, sizeof(key), "bob@example.org o %d", i);
		struct store_msg m = {
			.seq = 1 + (uint64_t)i, .sender = "bob@example.org",
			.peer = "bob@example.org", .stanza_id = sid,
			.origin_key = key, .event = "{}",
		};
		cr_assert(store_log_message(s, &m));
	}
}

Test(store, keys_are_known_while_the_filter_is_built)
{
	/* The filter is built a chunk per loop turn after the open: before
	 * its first chunk, between chunks, with keys logged meanwhile and
	 * once it is complete, every logged key is known and no other. */
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	log_keys(s, 0, 5000);
	uv_run(&loop, UV_RUN_NOWAIT);
	store_close(s);
	s = store_open(&loop, &cfg, "alice@example.org");
	expect_keys(s, 5000);
	uv_run(&loop, UV_RUN_NOWAIT);	/* one chunk of the stanza ids */
	expect_keys(s, 5000);
	log_keys(s, 5000, 5100);
	for (int i = 0; i < 6; i++) {	/* into the origin keys */
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	expect_keys(s, 5100);
	log_keys(s, 5100, 5200);
	uv_run(&loop, UV_RUN_DEFAULT);	/* returns once the build is done */
	expect_keys(s, 5200);
	store_close(s);
}

static unsigned pruned_rows;
static uint64_t pruned_first;

static bool pruned_cb(void *ud, uint64_t seq, bool outbound, const char *event,
	size_t len)
{
	if (pruned_rows++ == 0) {
		pruned_first = seq;
	}
	return true;
}

/* Logs 10,000 rows (seqs 1..10,000), the first 9,000 a year and a
 * half old, and reopens the store. */
static struct store *open_aged(void)
{
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	log_keys(s, 0, 10000);
	uv_run(&loop, UV_RUN_NOWAIT);
	store_close(s);
	sqlite3 *db;
	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	cr_assert(eq(int, sqlite3_exec(db, "UPDATE messages SET time = time -"
		" 550 * 86400000 WHERE seq <= 9000", NULL, NULL, NULL), SQLITE_OK));
	sqlite3_close(db);
	return store_open(&loop, &cfg, "alice@example.org");
}

Test(store, pruning_in_the_background_is_done_before_a_read)
{
	/* The open only begins the pruning; a read of the log (or of what
	 * was pruned) right after it finishes it first. */
	struct store *s = open_aged();
	struct store_query q = { .after = 0 };
	pruned_rows = 0;
	cr_assert(eq(int, store_log_read(s, &q, pruned_cb, NULL), 0));
	cr_expect(eq(u32, pruned_rows, 1000));
	cr_expect(eq(u64, pruned_first, 9001));
	cr_expect(eq(u64, store_pruned_upto(s), 9000));
	uv_run(&loop, UV_RUN_NOWAIT);
	store_close(s);
	cr_expect(eq(int, rows("messages"), 1000));
}

Test(store, pruning_in_the_background_finishes_on_its_own)
{
	struct store *s = open_aged();
	uv_run(&loop, UV_RUN_NOWAIT);	/* one chunk: not all of it yet */
	cr_expect(gt(int, rows("messages"), 1000));
	uv_run(&loop, UV_RUN_DEFAULT);	/* returns once both idles are done */
	cr_expect(eq(int, rows("messages"), 1000));
	cr_expect(eq(u64, store_pruned_upto(s), 9000));
	store_close(s);
}

/* Schema version 1 as it shipped, with three logged messages. */
static void write_version_1(void)
{
	char *sub = xasprintf("%s/sub", dir);
	mkdir(sub, 0700);
	free(sub);
	sqlite3 *db;
	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	const char *sql = "BEGIN;"
		"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		"CREATE TABLE outbox (id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL,"
		" recipient TEXT NOT NULL, stanza TEXT NOT NULL,"
		" accepted INTEGER NOT NULL);"
		"CREATE TABLE messages (seq INTEGER NOT NULL,"
		" outbound INTEGER NOT NULL, sender TEXT, peer TEXT, type TEXT,"
		" stanza_id TEXT, origin_key TEXT, msg_id TEXT,"
		" time INTEGER NOT NULL, event TEXT NOT NULL);"
		"CREATE INDEX messages_seq ON messages (seq);"
		"CREATE INDEX messages_peer ON messages (peer, seq);"
		"CREATE INDEX messages_time ON messages (time);"
		"CREATE INDEX messages_stanza_id ON messages (stanza_id)"
		" WHERE stanza_id IS NOT NULL;"
		"CREATE INDEX messages_origin ON messages (origin_key)"
		" WHERE origin_key IS NOT NULL;"
		"INSERT INTO meta VALUES ('seq_reserved', '20');"
		"INSERT INTO messages VALUES (12, 0, 'bob@example.org',"
		" 'bob@example.org', 'chat', 's12', 'bob@example.org o 12', 'i12',"
		" strftime('%s', 'now') * 1000, '{\"seq\":12}');"
		"INSERT INTO messages VALUES (10, 0, 'bob@example.org',"
		" 'bob@example.org', 'chat', 's10', NULL, NULL,"
		" strftime('%s', 'now') * 1000, '{\"seq\":10}');"
		"INSERT INTO messages VALUES (11, 1, 'alice@example.org',"
		" 'bob@example.org', 'chat', NULL, NULL, 'i11',"
		" strftime('%s', 'now') * 1000,"
		" '{\"seq\":11}');"
		"PRAGMA user_version = 1; COMMIT;";
	cr_assert(eq(int, sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK));
	sqlite3_close(db);
}

static int count_sql(const char *sql)
{
	sqlite3 *db;
	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	sqlite3_stmt *st;
	int n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
			sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

Test(store, version_1_upgrades_in_place)
{
	write_version_1();
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	cr_assert(eq(ptr, (void *)store_error(s), NULL));
	cr_expect(eq(int, count_sql("PRAGMA user_version"), 3));
	/* The time and seq indexes are gone, the rest is kept. */
	cr_expect(eq(int, count_sql("SELECT count(*) FROM sqlite_schema WHERE"
		" name IN ('messages_time', 'messages_seq')"), 0));
	cr_expect(eq(int, count_sql("SELECT count(*) FROM sqlite_schema WHERE"
		" type = 'index' AND name LIKE 'messages_%'"), 3));
	cr_expect(eq(int, rows("messages"), 3));
	cr_expect(ge(u64, store_seq_start(s), 20));
	cr_expect(store_message_known(s, "s10", NULL));
	cr_expect(store_message_known(s, NULL, "bob@example.org o 12"));
	cr_expect(not(store_message_known(s, "s11", "bob@example.org o 10")));
	struct store_query q = { .after = 9, .peer = "bob@example.org" };
	read_rows = 0;
	cr_assert(eq(int, store_log_read(s, &q, row_cb, NULL), 0));
	cr_expect(eq(u32, read_rows, 3));
	/* New rows go on after the migrated ones. */
	struct store_msg m = { .seq = 21, .sender = "bob@example.org",
		.peer = "bob@example.org", .stanza_id = "s21", .event = "{}" };
	cr_expect(store_log_message(s, &m));
	uv_run(&loop, UV_RUN_NOWAIT);
	store_close(s);
	s = store_open(&loop, &cfg, "alice@example.org");
	cr_expect(store_message_known(s, "s21", NULL));
	cr_expect(eq(int, rows("messages"), 4));
	store_close(s);
}

/* Schema version 2 as it shipped: outbound rows shared the seq of the
 * event before them (10: an inbound message; 13: a "sent" event). */
static void write_version_2(void)
{
	write_version_1();
	sqlite3 *db;
	cr_assert(eq(int, sqlite3_open(path, &db), SQLITE_OK));
	const char *sql = "BEGIN; DROP INDEX messages_time;"
		"INSERT INTO messages VALUES (10, 1, 'alice@example.org',"
		" 'bob@example.org', 'chat', NULL, NULL, 'o1',"
		" strftime('%s', 'now') * 1000, '{\"seq\":10,\"body\":\"o1\"}');"
		"INSERT INTO messages VALUES (13, 1, 'alice@example.org',"
		" 'carol@example.org', 'chat', NULL, NULL, 'o2',"
		" strftime('%s', 'now') * 1000, '{\"seq\":13,\"body\":\"o2\"}');"
		"INSERT INTO messages VALUES (13, 1, 'alice@example.org',"
		" 'carol@example.org', 'chat', NULL, NULL, 'o3',"
		" strftime('%s', 'now') * 1000, '{\"seq\":13,\"body\":\"o3\"}');"
		"PRAGMA user_version = 2; COMMIT;";
	cr_assert(eq(int, sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK));
	sqlite3_close(db);
}

/* What a query read: seq and line of each row. */
static uint64_t got_seq[16];
static char got_line[16][64];
static unsigned got;

static bool keep_cb(void *ud, uint64_t seq, bool outbound, const char *event,
	size_t len)
{
	if (got < 16) {
		got_seq[got] = seq;
		snprintf(got_line[got], sizeof(got_line[got]), "%.*s", (int)len,
			event);
		got++;
	}
	return true;
}

Test(store, version_2_rows_get_seqs_of_their_own)
{
	write_version_2();
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	cr_assert(eq(ptr, (void *)store_error(s), NULL));
	cr_expect(eq(int, count_sql("PRAGMA user_version"), 3));
	cr_expect(eq(int, rows("messages"), 6));
	/* Every row is served, each with its own seq: the first of each
	 * seq keeps it (an inbound one first), the others take the next
	 * free numbers above, and their lines say so. */
	struct store_query q = { .after = 0 };
	got = 0;
	cr_assert(eq(int, store_log_read(s, &q, keep_cb, NULL), 0));
	cr_assert(eq(u32, got, 6));
	uint64_t want[] = { 10, 11, 12, 13, 14, 15 };
	for (unsigned i = 0; i < 6; i++) {
		cr_expect(eq(u64, got_seq[i], want[i]), "row %u", i);
	}
	cr_expect(eq(str, got_line[1], "{\"seq\":11}"));
	cr_expect(eq(str, got_line[3], "{\"seq\":13,\"body\":\"o2\"}"));
	cr_expect(eq(str, got_line[4], "{\"seq\":14,\"body\":\"o1\"}"));
	cr_expect(eq(str, got_line[5], "{\"seq\":15,\"body\":\"o3\"}"));
	q = (struct store_query){ .after = 0, .peer = "carol@example.org" };
	got = 0;
	cr_assert(eq(int, store_log_read(s, &q, keep_cb, NULL), 0));
	cr_expect(eq(u32, got, 2));
	cr_expect(store_message_known(s, "s12", NULL));
	cr_expect(store_message_known(s, NULL, "bob@example.org o 12"));
	cr_expect(ge(u64, store_seq_start(s), 20));
	/* seq is the key now: a repeated one fails the turn. */
	struct store_msg m = { .seq = 14, .sender = "bob@example.org",
		.peer = "bob@example.org", .event = "{}" };
	store_log_message(s, &m);
	told = told_ok = 0;
	store_when_committed(s, done_cb, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect(eq(int, told, 1));
	cr_expect(eq(int, told_ok, 0));
	cr_expect(ne(ptr, strstr(last_error, "UNIQUE"), NULL), "%s", last_error);
	cr_expect(eq(int, rows("messages"), 6));
	store_close(s);
}

Test(store, garbage_is_reported_and_refuses_writes)
{
	char *sub = xasprintf("%s/sub", dir);
	mkdir(sub, 0700);
	free(sub);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 1000; i++) {
		fputs("this is not a database at all ", f);
	}
	fclose(f);
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	cr_assert(ne(ptr, (void *)store_error(s), NULL));
	cr_expect(eq(i64, add(s, "x"), 0));
	cr_expect(not(store_log_message(s, &(struct store_msg){ .seq = 1,
		.event = "{}" })));
	json_t *o = json_object();
	store_status(s, o);
	bool ok = json_is_true(json_object_get(json_object_get(o, "store"),
		"ok"));
	cr_expect(not(ok));
	json_decref(o);
	store_close(s);
}

Test(store, disabled_is_no_error)
{
	cfg.store_enabled = false;
	struct store *s = store_open(&loop, &cfg, "alice@example.org");
	cr_expect(not(store_enabled(s)));
	cr_expect(eq(ptr, (void *)store_error(s), NULL));
	cr_expect(eq(int, access(path, F_OK), -1));
	store_close(s);
}
