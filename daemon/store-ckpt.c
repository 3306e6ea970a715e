#include <stdbool.h>
#include <stdlib.h>

#include "daemon/log.h"
#include "daemon/store-ckpt.h"
#include "proto/alloc.h"

#define CKPT_PAGES 1000		/* SQLite's own mark: the pool starts */
#define CKPT_STEP 500		/* then again every so many new pages */
#define CKPT_HARD_PAGES 8000	/* on the loop thread, to restart the log */
/* The log file keeps the size it grew to unless told: after a burst it
 * is cut back to this when it starts anew (once, not in steady use,
 * where the pool's copies start it anew below 2,000 pages). */
#define LOG_KEEP_BYTES "8388608"

struct store_ckpt {
	uv_loop_t *loop;
	sqlite3 *db;		/* the daemon's connection, loop thread */
	sqlite3 *worker_db;	/* the pool's, one job at a time */
	char *path;
	uv_work_t work;
	bool busy;		/* a job is queued or running */
	bool stopped;		/* free when the job is done */
	int rc;			/* the job's outcome */
	int copied;		/* log pages the job found copied */
	int backfilled;		/* ... as the loop thread last heard */
};

static void ckpt_free(struct store_ckpt *c)
{
	sqlite3_close(c->worker_db);
	free(c->path);
	free(c);
}

static int open_worker_db(struct store_ckpt *c)
{
	int rc = sqlite3_open_v2(c->path, &c->worker_db, SQLITE_OPEN_READWRITE |
		SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		return rc;
	}
	sqlite3_busy_timeout(c->worker_db, 0);
	/* Until it has read something it does not know that the file is in
	 * WAL mode, and its checkpoints do nothing. */
	return sqlite3_exec(c->worker_db, "PRAGMA synchronous = NORMAL;"
		"SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
}

/* On a pool thread: only worker_db, rc and copied are touched here. */
static void work_cb(uv_work_t *w)
{
	struct store_ckpt *c = w->data;
	c->copied = 0;
	if (c->worker_db == NULL) {
		c->rc = open_worker_db(c);
		if (c->rc != SQLITE_OK) {
			return;
		}
	}
	int pages = 0;
	c->rc = sqlite3_wal_checkpoint_v2(c->worker_db, NULL,
		SQLITE_CHECKPOINT_PASSIVE, &pages, &c->copied);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct store_ckpt *c = w->data;
	c->busy = false;
	if (c->stopped) {
		ckpt_free(c);
		return;
	}
	if (status == 0 && c->rc == SQLITE_OK) {
		c->backfilled = c->copied;
	} else if (status == 0 && c->rc != SQLITE_BUSY) {
		log_warnx("store: background checkpoint: %s",
			c->worker_db ? sqlite3_errmsg(c->worker_db) :
			sqlite3_errstr(c->rc));
		sqlite3_close(c->worker_db);
		c->worker_db = NULL;
	}
}

/*
 * After each commit of the daemon's connection, on the loop thread, with
 * the pages the log holds. SQLite starts the log anew only when a write
 * begins with all of it copied, which the pool's copy, racing the
 * writes, rarely achieves while messages keep coming: past the hard mark
 * the loop thread copies the rest itself (what came since the pool's last
 * copy: little) so that the log is bounded.
 */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
	struct store_ckpt *c = ud;
	if (pages < c->backfilled) {
		c->backfilled = 0;	/* it started anew */
	}
	if (pages < CKPT_PAGES || c->busy) {
		return SQLITE_OK;
	}
	if (pages >= CKPT_HARD_PAGES) {
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
			NULL, NULL);
	} else if (pages - c->backfilled >= CKPT_STEP) {
		c->busy = uv_queue_work(c->loop, &c->work, work_cb,
			after_work_cb) == 0;
	}
	return SQLITE_OK;
}

struct store_ckpt *store_ckpt_start(uv_loop_t *loop, sqlite3 *db,
	const char *path)
{
	struct store_ckpt *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->db = db;
	c->path = xstrdup(path);
	c->work.data = c;
	sqlite3_exec(db, "PRAGMA journal_size_limit = " LOG_KEEP_BYTES, NULL,
		NULL, NULL);
	sqlite3_wal_hook(db, wal_hook, c);
	return c;
}

void store_ckpt_stop(struct store_ckpt *c)
{
	if (c == NULL) {
		return;
	}
	sqlite3_wal_autocheckpoint(c->db, CKPT_PAGES);
	c->stopped = true;
	if (!c->busy) {
		ckpt_free(c);
	}
}
