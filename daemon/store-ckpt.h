/*
 * The store's checkpoints, off the loop thread. SQLite in WAL mode copies
 * the log back into the database every 1000 pages by itself, inside the
 * commit that crosses the mark: two fdatasyncs and the copy, 5-20 ms on
 * the loop thread, every ~140 messages of the message log, which made
 * the latency's p99. Here the connection's automatic checkpoints are off
 * and a second connection, on libuv's thread pool, runs a PASSIVE
 * checkpoint (which never blocks the writer) once the log holds 1000
 * pages. Should the log grow past a hard bound all the same (writes
 * faster than the disk, a worker that cannot catch up), the commit that
 * crosses it checkpoints on the loop thread as before: the log stays
 * bounded.
 */
#ifndef XMPPD_DAEMON_STORE_CKPT_H
#define XMPPD_DAEMON_STORE_CKPT_H

#include <sqlite3.h>
#include <uv.h>

struct store_ckpt;

/* Takes over db's checkpoints (path: its file, for the second
 * connection); never NULL. */
struct store_ckpt *store_ckpt_start(uv_loop_t *loop, sqlite3 *db,
	const char *path);
/* Gives db its automatic checkpoints back, before db closes; a
 * checkpoint under way finishes on its own. Accepts NULL. */
void store_ckpt_stop(struct store_ckpt *c);

#endif
