/*
 * The event sink: turns published events into lines for subscribers and
 * keeps a bounded ring of recent ones for "subscribe" with "since".
 *
 * Each event is encoded once; the same bytes are queued for every
 * subscriber that wants it. Subscriptions are a bit mask over the event
 * names the protocol defines (SINK_OTHER stands for any other name and is
 * set only by "*"). Every event except the "xml" console and "stanza"
 * events (live only, the latter filtered per client by namespace) is
 * retained in the ring, at most max_events of them and max_bytes of
 * encoded lines; evicting one records its seq in dropped_upto, so a
 * replay can tell the client that part of what it asked for is gone.
 * The lines live in chunks of 16 KiB taken in turn (no malloc per
 * event); a chunk goes once none of its lines is retained.
 */
#ifndef XMPPD_IPC_SINK_H
#define XMPPD_IPC_SINK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ipc;
struct ipc_client;

#define SINK_OTHER (1u << 31)

struct sink_chunk;

struct sink_entry {
	uint64_t seq;
	uint32_t bit;		/* the event name's subscription bit */
	char *line;		/* encoded, '\n'-terminated */
	size_t len;
	char *from;		/* the event's "from" (after line), or NULL */
	char *from_bare;	/* its prepared bare JID, filled on first use */
	bool bare_done;
	struct sink_chunk *chunk;	/* where line lives */
};

struct sink {
	struct sink_entry *ring;	/* max_events slots, allocated on first use */
	struct sink_chunk *chunks;	/* the lines' memory, oldest first */
	struct sink_chunk *last;	/* where new lines go */
	size_t head;			/* index of the oldest entry */
	size_t count;
	size_t bytes;			/* sum of retained line lengths */
	size_t max_events;
	size_t max_bytes;
	uint64_t dropped_upto;		/* highest seq no longer retained */
};

/* Sets limits (max_bytes is 8 MiB, or half of max_output if that is less,
 * so a full replay fits in a client's output bound); events up to
 * last_seq count as no longer retained. */
void sink_init(struct sink *s, uint64_t last_seq, size_t max_output);
void sink_finish(struct sink *s);
/* Plugs ipc's sink into daemon/events (and takes it out). */
void sink_attach(struct ipc *ipc);
void sink_detach(struct ipc *ipc);
/*
 * Parses an "events" argument: "*" or an array of event names. Returns
 * the mask, or false with err (errlen bytes) saying what is wrong.
 */
bool sink_parse_events(const json_t *v, uint32_t *mask, char *err, size_t errlen);
/* The i-th event name the protocol defines, or NULL past the last. */
const char *sink_event_name(size_t i);
/*
 * Queues for c the retained events after since that its subscription
 * matches. *gap is set if some event after since is no longer retained,
 * *oldest to the oldest seq still retained.
 */
void sink_replay(struct ipc *ipc, struct ipc_client *c, uint64_t since,
	bool *gap, uint64_t *oldest);

#endif
