/*
 * Inside the control socket: the listener and its clients, shared by the
 * ipc/ files (and the unit test), never by daemon/.
 *
 * A client's lifetime: it is linked into ipc->clients while its libuv
 * handles are open. Closing (client_close) only marks it and calls
 * uv_close; it is unlinked in the last close callback, never under a loop
 * that walks the list. refs counts that link plus each request still
 * waiting for the core (an iq): the memory goes when the last is dropped,
 * so a reply arriving for a client that hung up finds it marked closing
 * and is thrown away.
 *
 * Output: every byte for a client goes through ipc_client_write into
 * out; a uv_prepare_t hands out to one uv_write per client per loop turn.
 * Replies keep request order through a queue of slots: a slot is reserved
 * when a request is read and filled when its answer is known; filled
 * slots at the head are written. Events are written at once, so they may
 * overtake a reply that waits for the network.
 */
#ifndef XMPPD_IPC_CLIENT_H
#define XMPPD_IPC_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ipc/sink.h"
#include "proto/buf.h"

struct xmppd;

/* The wire protocol's version (greeting, protocol command): bump it on
 * any incompatible change. */
#define IPC_PROTOCOL_VERSION 1

/* Requests a client may have waiting for the network at once. */
#define IPC_MAX_WAITING 256

/* One reply, in the order of the requests. */
struct ipc_reply {
	struct ipc_reply *next;
	char *line;		/* encoded, once ready */
	size_t len;
	bool ready;
};

struct ipc_client {
	struct ipc *ipc;		/* NULL once closed and unlinked */
	struct ipc_client *next;
	struct ipc_client *prev;
	unsigned long id;		/* for logs */
	unsigned refs;
	unsigned handles;		/* libuv handles not yet closed */
	uv_pipe_t pipe;
	uv_timer_t drop_timer;		/* bounds the wait for a dropped client */

	bool closing;			/* uv_close called: no more I/O */
	bool eof;			/* read side done: finish, then close */
	bool dropping;			/* too slow: last line queued */

	struct buf in;			/* a partial request line */
	bool skipping;			/* discarding an over-long line */

	struct buf out;			/* queued, not yet handed to libuv */
	uv_write_t wreq;
	char *wbuf;			/* what wreq is writing */
	bool writing;
	bool behind;			/* too much unwritten: in nbehind */

	struct ipc_reply *replies;	/* oldest first */
	struct ipc_reply **replies_tail;
	unsigned waiting;		/* slots not yet filled */
	size_t held;			/* bytes of filled slots held back */

	uint32_t events;		/* subscription mask (sink.h) */
	char *from;			/* filter: prepared bare JID, or NULL */
	json_t *ns;			/* "stanza" filter: array of namespaces */
};

struct ipc {
	uv_loop_t *loop;
	struct xmppd *x;
	char *path;
	dev_t dev;			/* the socket we bound, so ipc_free */
	ino_t ino;			/* unlinks only ours */
	int fd;				/* listening socket */
	uid_t uid;			/* the only peer uid let in */
	size_t max_line;
	size_t max_output;
	unsigned accept_pause_ms;	/* after EMFILE/ENFILE */
	unsigned drop_grace_ms;		/* for a dropped client's last line */

	uv_poll_t listener;
	uv_timer_t accept_timer;
	uv_prepare_t flusher;
	unsigned handles;		/* the three above, until closed */
	bool accept_paused;
	unsigned long accept_failures;	/* EMFILE/ENFILE seen */
	bool freeing;

	struct ipc_client *clients;
	size_t nclients;
	size_t nbehind;			/* clients behind: back-pressure on */
	unsigned long next_id;
	struct sink sink;
	char *readbuf;			/* IPC_READ_BUF, not zeroed: only */
};					/* what reads reached is resident */

#define IPC_READ_BUF (64 * 1024)

/* Queues len bytes (whole lines) for c: the one way out to a client.
 * Past ipc->max_output unwritten bytes (replies held back behind a
 * pending one included) the client is dropped. */
void ipc_client_write(struct ipc_client *c, const char *data, size_t len);
/* Queues reply (stolen) after every earlier reply of c. */
void ipc_client_reply(struct ipc_client *c, json_t *reply);
/* Holds c's next reply position for an answer that comes later. */
struct ipc_reply *ipc_client_reserve(struct ipc_client *c);
/* Fills a held position with reply (stolen) and writes what is due. */
void ipc_client_fill(struct ipc_client *c, struct ipc_reply *slot,
	json_t *reply);
/* False once c is closing: its output goes nowhere. */
bool ipc_client_alive(const struct ipc_client *c);
/* Keeps c's memory while a request is pending (and lets it go). */
void ipc_client_ref(struct ipc_client *c);
void ipc_client_unref(struct ipc_client *c);

#endif
