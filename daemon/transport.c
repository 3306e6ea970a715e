/*
 * One TCP connection with GnuTLS driven over memory.
 *
 * Bytes flow like this:
 *
 *   socket --uv_read--> rbuf --(plain)--------------------> cb.data
 *                           \--(TLS)--> in --pull--> GnuTLS --> plain --> cb.data
 *   transport_write --(plain)---------------------> out --uv_write--> socket
 *                   \--(TLS)--> GnuTLS --push--> out
 *
 * rbuf is one fixed 64 KiB buffer handed to libuv by the alloc callback.
 * "in" is the ciphertext queue the pull function reads from; since every
 * read is drained synchronously it never holds more than one read plus a
 * partial record, and it is bounded anyway. "out" collects what GnuTLS
 * pushes (or plaintext before TLS) and is flushed with one uv_write per
 * drain or write call, so records are coalesced. "early" keeps plaintext
 * written before the link can carry it (still connecting, handshaking).
 *
 * The server's certificate is judged inside the handshake, by GnuTLS's
 * own verification or, with a pin, by verify_pinned, both before our
 * Finished goes out; "early" is flushed only once the handshake is done,
 * so no byte of the stream leaves for a server that failed the checks.
 *
 * GnuTLS never reads ahead, and under TLS 1.3 gnutls_record_recv returns
 * GNUTLS_E_AGAIN after each post-handshake message while application
 * records may still be queued: drain() therefore loops until it gets
 * GNUTLS_E_AGAIN *and* the pull function has just found "in" empty.
 *
 * Lifetime: the libuv handles (two timers, the TCP handle) live inside
 * the struct; "refs" counts them plus an outstanding getaddrinfo request.
 * transport_free closes them and the memory goes in the last close
 * callback, so it is never released synchronously: a callback that frees
 * its transport leaves the struct valid until a later loop phase, and
 * every place that invokes a callback checks alive() before going on.
 * Errors are always reported from the "defer" timer in a later loop turn,
 * never from inside the caller's own transport_* call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>	/* malloc_trim */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "daemon/log.h"
#include "daemon/transport.h"
#include "proto/alloc.h"
#include "proto/buf.h"

#define READ_BUF_SIZE (64 * 1024)
#define PLAIN_BUF_SIZE (64 * 1024)
#define MAX_RECORD 16384
#define IN_MAX (1024 * 1024)
#define DEFAULT_TIMEOUT_MS 10000
#define LINGER_MS 2000
#define OUT_HIGH (4 * 1024 * 1024)	/* unsent: stop reading the server */
#define OUT_LOW (1024 * 1024)		/* ...until it has taken this much */
#define KEEPALIVE_S 60
#define ERRORS_MAX 400
#define DEFAULT_PRIORITY "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-DTLS-ALL"
#define PIN_PREFIX "sha256/"
#define PIN_SIZE 64		/* "sha256/" + 44 base64 characters + NUL */

enum tstate {
	TS_IDLE,	/* created, not connecting yet */
	TS_RESOLVING,	/* getaddrinfo running */
	TS_CONNECTING,	/* trying the addresses in turn */
	TS_PLAIN,	/* connected, no TLS (STARTTLS mode) */
	TS_HANDSHAKE,	/* TLS handshake in progress */
	TS_TLS,		/* TLS up */
	TS_DONE,	/* failed, ended or shut down */
};

struct wreq {
	uv_write_t req;
	char *data;
	size_t len;
};

struct transport {
	uv_loop_t *loop;
	struct transport_cb cb;
	void *ud;
	char *host;
	char *server_name;
	char *ca_file;
	char *priority;
	char *pin;		/* configured, or NULL */
	int port;
	bool direct_tls;
	bool verify;
	unsigned timeout_ms;

	enum tstate state;
	bool quiet;		/* no callback may fire any more */
	bool freeing;
	int refs;		/* open handles and requests */

	uv_getaddrinfo_t gai;
	bool gai_pending;
	struct addrinfo *addrs;
	struct addrinfo *next_addr;
	char cur_addr[64];	/* "[::1]:5222", for messages */
	char cur_ip[INET6_ADDRSTRLEN];
	struct buf errors;	/* one entry per failed address */

	uv_tcp_t tcp;
	bool tcp_open;
	uv_connect_t connect_req;
	uv_shutdown_t shutdown_req;
	bool shutdown_pending;
	bool shut;		/* uv_shutdown issued: linger on free */
	bool peer_closed;	/* read EOF or error seen */
	bool paused;		/* reading stopped by transport_pause */
	uv_timer_t timer;	/* connect, handshake and linger deadlines */
	uv_timer_t defer;	/* reports the error in a later loop turn */
	enum transport_error err;
	char reason[512];
	bool err_pending;

	gnutls_session_t session;
	gnutls_certificate_credentials_t cred;
	bool tls_up;
	bool pull_empty;
	struct buf in;
	size_t in_off;
	struct buf out;
	struct buf early;
	size_t inflight;
	bool read_paused;	/* the server is not reading: see backlog() */

	struct stream_tls_info info;
	unsigned char unique[64];
	unsigned char exporter[64];
	char desc[64];
	char peer_pin[PIN_SIZE];	/* the server key's, "" until known */
	char verify_error[512];	/* why the verify function said no */

	/* Allocated apart and not zeroed, so that only the pages a read
	 * reached are resident: an idle daemon, or one without TLS (plain
	 * stays NULL), does not carry 128 KiB it never touched. */
	char *rbuf;		/* READ_BUF_SIZE */
	char *plain;		/* PLAIN_BUF_SIZE, at the first TLS read */
	size_t plain_used;	/* how far plain was ever written, to wipe */
};

static void try_next(struct transport *t);
static void on_timer(uv_timer_t *timer);

static const char *state_name(enum tstate st)
{
	static const char *const names[] = {
		[TS_IDLE] = "idle",
		[TS_RESOLVING] = "resolving",
		[TS_CONNECTING] = "connecting",
		[TS_PLAIN] = "plain",
		[TS_HANDSHAKE] = "handshake",
		[TS_TLS] = "tls",
		[TS_DONE] = "done",
	};
	return names[st];
}

static void enter_state(struct transport *t, enum tstate st)
{
	if (t->state != st) {
		log_debug("transport %s: %s -> %s", t->host, state_name(t->state),
			state_name(st));
	}
	t->state = st;
}

/* True while the owner may still hear from us and we may go on working. */
static bool alive(const struct transport *t, enum tstate st)
{
	return !t->quiet && t->state == st;
}

static void release(struct transport *t)
{
	if (t->session != NULL) {
		gnutls_deinit(t->session);
	}
	if (t->cred != NULL) {
		gnutls_certificate_free_credentials(t->cred);
	}
	if (t->addrs != NULL) {
		uv_freeaddrinfo(t->addrs);
	}
	buf_finish(&t->errors);
	buf_finish(&t->in);
	if (t->plain != NULL) {
		xwipe(t->plain, t->plain_used);
		free(t->plain);
	}
	free(t->rbuf);
	buf_finish(&t->out);
	xwipe(t->early.data, t->early.len);
	buf_finish(&t->early);
	free(t->host);
	free(t->server_name);
	free(t->ca_file);
	free(t->priority);
	free(t->pin);
	free(t);
}

static void unref(struct transport *t)
{
	t->refs--;
	if (t->freeing && t->refs == 0) {
		release(t);
	}
}

static void on_handle_close(uv_handle_t *h)
{
	struct transport *t = h->data;
	if (h == (uv_handle_t *)&t->tcp) {
		t->tcp_open = false;
		t->shutdown_pending = false;
		if (!t->freeing && t->state == TS_CONNECTING) {
			unref(t);
			try_next(t);
			return;
		}
	}
	unref(t);
}

static void close_tcp(struct transport *t)
{
	if (t->tcp_open && !uv_is_closing((uv_handle_t *)&t->tcp)) {
		uv_close((uv_handle_t *)&t->tcp, on_handle_close);
	}
}

static void close_handle(struct transport *t, uv_handle_t *h)
{
	if (!uv_is_closing(h)) {
		uv_close(h, on_handle_close);
	}
}

static void close_all(struct transport *t)
{
	if (t->gai_pending) {
		uv_cancel((uv_req_t *)&t->gai);
	}
	close_handle(t, (uv_handle_t *)&t->timer);
	close_handle(t, (uv_handle_t *)&t->defer);
	close_tcp(t);
}

static void on_defer(uv_timer_t *timer)
{
	struct transport *t = timer->data;
	if (!t->err_pending || t->quiet) {
		return;
	}
	t->err_pending = false;
	t->quiet = true;
	if (t->cb.error != NULL) {
		t->cb.error(t->ud, t->err, t->reason);
	}
}

/* Ends the connection; the owner hears of it from a later loop turn. */
static void fail(struct transport *t, enum transport_error err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct transport *t, enum transport_error err, const char *fmt, ...)
{
	if (t->state == TS_DONE && (t->err_pending || t->quiet)) {
		close_tcp(t);
		return;
	}
	enter_state(t, TS_DONE);
	uv_timer_stop(&t->timer);
	close_tcp(t);
	if (t->quiet) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);
	log_debug("transport %s: failed: %s", t->host, t->reason);
	t->err = err;
	t->err_pending = true;
	uv_timer_start(&t->defer, on_defer, 0, 0);
}

/* Hands plaintext to the owner; false when we must stop afterwards. */
static bool deliver(struct transport *t, const char *data, size_t len)
{
	enum tstate st = t->state;
	if (len == 0) {
		return alive(t, st);
	}
	if (!t->quiet && t->cb.data != NULL) {
		t->cb.data(t->ud, data, len);
	}
	return alive(t, st);
}

/* Transport callbacks ---------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static bool tcp_usable(const struct transport *t)
{
	return t->tcp_open && !uv_is_closing((const uv_handle_t *)&t->tcp);
}

/* Reads from the server again after a pause. */
static void resume_reading(struct transport *t)
{
	t->read_paused = false;
	if (!tcp_usable(t) || t->peer_closed || t->paused) {
		return;		/* t->paused: transport_pause resumes */
	}
	int r = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
	if (r < 0) {
		fail(t, TRANSPORT_ERR_IO, "read from %s failed: %s", t->cur_addr,
			uv_strerror(r));
	}
}

/*
 * Back-pressure toward a server that keeps sending but does not read
 * what we write (answers to its requests, acks): past OUT_HIGH unsent
 * bytes we stop reading it, so nothing more gets answered and the
 * queue stays bounded; below OUT_LOW we read again. The keepalive probe
 * ends a connection that stays stuck.
 */
static void backlog(struct transport *t)
{
	if (!t->read_paused && t->inflight > OUT_HIGH && !t->quiet &&
			tcp_usable(t)) {
		t->read_paused = true;
		uv_read_stop((uv_stream_t *)&t->tcp);
		log_warnx("transport %s: the server is not reading (%zu bytes "
			"unsent): not reading from it until it does", t->host,
			t->inflight);
	} else if (t->read_paused && t->inflight < OUT_LOW && !t->freeing) {
		log_info("transport %s: the server reads again", t->host);
		resume_reading(t);
	}
}

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct transport *t = req->handle->data;
	t->inflight -= w->len;
	free(w->data);
	free(w);
	if (status < 0 && status != UV_ECANCELED) {
		fail(t, TRANSPORT_ERR_IO, "write to %s failed: %s", t->cur_addr,
			uv_strerror(status));
		return;
	}
	backlog(t);
}

static bool can_write(const struct transport *t)
{
	return t->tcp_open && !uv_is_closing((const uv_handle_t *)&t->tcp) &&
		(t->state == TS_PLAIN || t->state == TS_HANDSHAKE || t->state == TS_TLS);
}

/* Writes everything collected in "out" with a single uv_write. */
static void flush(struct transport *t)
{
	if (t->out.len == 0 || !can_write(t)) {
		return;
	}
	struct wreq *w = xcalloc(1, sizeof(*w));
	w->data = buf_steal(&t->out, &w->len);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
	t->inflight += w->len;
	int r = uv_write(&w->req, (uv_stream_t *)&t->tcp, &b, 1, on_write);
	if (r < 0) {
		t->inflight -= w->len;
		free(w->data);
		free(w);
		fail(t, TRANSPORT_ERR_IO, "write to %s failed: %s", t->cur_addr,
			uv_strerror(r));
		return;
	}
	backlog(t);
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct transport *t = ptr;
	buf_append(&t->out, data, len);
	return (ssize_t)len;
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct transport *t = ptr;
	size_t avail = t->in.len - t->in_off;
	if (avail == 0) {
		t->pull_empty = true;
		gnutls_transport_set_errno(t->session, EAGAIN);
		return -1;
	}
	size_t n = len < avail ? len : avail;
	memcpy(data, t->in.data + t->in_off, n);
	t->in_off += n;
	return (ssize_t)n;
}

static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
	struct transport *t = ptr;
	return t->in.len > t->in_off ? 1 : 0;
}

/* Encrypts plaintext into "out", at most one record per call. */
static void send_tls(struct transport *t, const char *data, size_t len)
{
	while (len > 0 && t->state == TS_TLS) {
		ssize_t r = gnutls_record_send(t->session, data, len);
		if (r > 0) {
			data += r;
			len -= (size_t)r;
		} else if (r != GNUTLS_E_INTERRUPTED) {
			fail(t, TRANSPORT_ERR_IO, "TLS send failed: %s",
				gnutls_strerror((int)r));
		}
	}
}

/* Sends what was written before the link could carry it. */
static void flush_early(struct transport *t)
{
	if (t->early.len == 0) {
		return;
	}
	size_t len;
	char *data = buf_steal(&t->early, &len);
	if (t->state == TS_TLS) {
		send_tls(t, data, len);
	} else {
		buf_append(&t->out, data, len);
	}
	free(data);
	flush(t);
}

/* Reading ----------------------------------------------------------------- */

/* Handles a gnutls_record_recv result that is neither data nor
 * GNUTLS_E_AGAIN; true to keep reading. */
static bool recv_problem(struct transport *t, ssize_t r, size_t before)
{
	if (r == 0) {
		fail(t, TRANSPORT_ERR_EOF, "server closed the TLS session");
		return false;
	}
	if (r == GNUTLS_E_REHANDSHAKE) {
		gnutls_alert_send(t->session, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
	}
	if (r == GNUTLS_E_REHANDSHAKE || !gnutls_error_is_fatal((int)r)) {
		log_debug("transport %s: TLS: %s (ignored)", t->host,
			gnutls_strerror((int)r));
		return t->in_off != before;
	}
	fail(t, TRANSPORT_ERR_IO, "TLS receive failed: %s", gnutls_strerror((int)r));
	return false;
}

/* Feeds every complete record to the owner, coalescing records into
 * "plain"; see the file comment for the loop's end condition. */
static void drain(struct transport *t)
{
	size_t have = 0;
	if (t->plain == NULL) {
		t->plain = xmalloc(PLAIN_BUF_SIZE);
	}
	for (;;) {
		size_t before = t->in_off;
		t->pull_empty = false;
		ssize_t r = gnutls_record_recv(t->session, t->plain + have,
			PLAIN_BUF_SIZE - have);
		if (r > 0) {
			have += (size_t)r;
			if (have > t->plain_used) {
				t->plain_used = have;
			}
			if (PLAIN_BUF_SIZE - have >= MAX_RECORD) {
				continue;
			}
		} else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (t->pull_empty || t->in_off == before) {
				break;
			}
			continue;
		}
		if (!deliver(t, t->plain, have)) {
			return;
		}
		have = 0;
		if (r <= 0 && !recv_problem(t, r, before)) {
			break;
		}
	}
	if (have > 0 && !deliver(t, t->plain, have)) {
		return;
	}
	if (alive(t, TS_TLS)) {
		flush(t);
	}
}

static bool queue_cipher(struct transport *t, const char *data, size_t len)
{
	if (t->in_off > 0) {
		buf_consume(&t->in, t->in_off);
		t->in_off = 0;
	}
	if (t->in.len + len > IN_MAX) {
		fail(t, TRANSPORT_ERR_IO, "TLS input queue overflow");
		return false;
	}
	buf_append(&t->in, data, len);
	return true;
}

static void do_handshake(struct transport *t);

static void end_linger(struct transport *t);

static void read_failed(struct transport *t, ssize_t nread)
{
	t->peer_closed = true;
	if (t->state == TS_DONE || t->quiet) {
		uv_read_stop((uv_stream_t *)&t->tcp);
		end_linger(t);
		return;
	}
	if (nread != UV_EOF) {
		fail(t, TRANSPORT_ERR_IO, "read from %s failed: %s", t->cur_addr,
			uv_strerror((int)nread));
	} else if (t->state == TS_HANDSHAKE) {
		fail(t, TRANSPORT_ERR_TLS,
			"server closed the connection during the TLS handshake");
	} else {
		fail(t, TRANSPORT_ERR_EOF, "server closed the connection");
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct transport *t = h->data;
	*b = uv_buf_init(t->rbuf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct transport *t = s->data;
	if (nread < 0) {
		read_failed(t, nread);
		return;
	}
	if (nread == 0 || t->quiet) {
		return;
	}
	if (t->state == TS_PLAIN) {
		deliver(t, b->base, (size_t)nread);
	} else if (t->state == TS_HANDSHAKE) {
		if (queue_cipher(t, b->base, (size_t)nread)) {
			do_handshake(t);
		}
	} else if (t->state == TS_TLS) {
		if (queue_cipher(t, b->base, (size_t)nread)) {
			drain(t);
		}
	}
}

/* Stops or resumes reading from the server, once the connection is up:
 * back-pressure while local subscribers are behind. */
void transport_pause(struct transport *t, bool pause)
{
	bool up = t != NULL && !t->quiet && !t->peer_closed &&
		(t->state == TS_PLAIN || t->state == TS_TLS);
	if (!up || t->paused == pause) {
		return;
	}
	t->paused = pause;
	if (pause) {
		uv_read_stop((uv_stream_t *)&t->tcp);
	} else if (!t->read_paused) {
		resume_reading(t);	/* unless backlog() keeps it stopped */
	}
}

/* Certificate checks ------------------------------------------------------ */

/* Writes the pin of a DER certificate's key into out: "sha256/" and the
 * base64 of the SHA-256 digest of its DER SubjectPublicKeyInfo. */
static bool key_pin(const gnutls_datum_t *der, char *out, size_t size)
{
	gnutls_pubkey_t key;
	if (gnutls_pubkey_init(&key) < 0) {
		return false;
	}
	unsigned char digest[32];
	gnutls_datum_t spki = { NULL, 0 };
	gnutls_datum_t dig = { digest, sizeof(digest) };
	gnutls_datum_t b64 = { NULL, 0 };
	bool ok = gnutls_pubkey_import_x509_raw(key, der, GNUTLS_X509_FMT_DER, 0) == 0 &&
		gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &spki) == 0 &&
		gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest) == 0 &&
		gnutls_base64_encode2(&dig, &b64) == 0 &&
		(size_t)snprintf(out, size, PIN_PREFIX "%.*s", (int)b64.size,
			(const char *)b64.data) < size;
	gnutls_free(b64.data);
	gnutls_free(spki.data);
	gnutls_pubkey_deinit(key);
	return ok;
}

/* The server's leaf certificate (DER), or NULL if it sent none. */
static const gnutls_datum_t *peer_leaf(const struct transport *t)
{
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(t->session, &n);
	return chain != NULL && n > 0 ? &chain[0] : NULL;
}

/* Computes peer_pin from the server's certificate; false if unknown. */
static bool note_peer_pin(struct transport *t)
{
	const gnutls_datum_t *leaf = peer_leaf(t);
	if (leaf == NULL || !key_pin(leaf, t->peer_pin, sizeof(t->peer_pin))) {
		t->peer_pin[0] = '\0';
	}
	return t->peer_pin[0] != '\0';
}

/* GnuTLS's words for a verification status, e.g. "The certificate is NOT
 * trusted. The certificate issuer is unknown." */
static void status_text(unsigned status, char *out, size_t size)
{
	gnutls_datum_t txt = { NULL, 0 };
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
			&txt, 0) < 0) {
		snprintf(out, size, "verification status 0x%x", status);
		return;
	}
	size_t len = txt.size;
	while (len > 0 && txt.data[len - 1] == ' ') {
		len--;
	}
	snprintf(out, size, "%.*s", (int)len, (const char *)txt.data);
	gnutls_free(txt.data);
}

/* The reason for a rejected certificate, with the server's pin when it
 * is known, so that a user can learn it. */
static void describe_status(struct transport *t, unsigned status, char *out,
	size_t size)
{
	char why[256];
	status_text(status, why, sizeof(why));
	if (note_peer_pin(t)) {
		snprintf(out, size, "certificate of %s rejected: %s (server key %s)",
			t->server_name, why, t->peer_pin);
	} else {
		snprintf(out, size, "certificate of %s rejected: %s", t->server_name, why);
	}
}

/* The leaf's own checks when a pin stands in for CA trust: the name and
 * the validity period, judged as GnuTLS's chain verification does. */
static unsigned leaf_status(const struct transport *t, const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	if (gnutls_x509_crt_init(&crt) < 0) {
		return GNUTLS_CERT_INVALID;
	}
	unsigned status = 0;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0) {
		status = GNUTLS_CERT_INVALID;
	} else {
		time_t now = time(NULL);
		time_t from = gnutls_x509_crt_get_activation_time(crt);
		time_t until = gnutls_x509_crt_get_expiration_time(crt);
		if (!gnutls_x509_crt_check_hostname2(crt, t->server_name, 0)) {
			status |= GNUTLS_CERT_UNEXPECTED_OWNER | GNUTLS_CERT_INVALID;
		}
		if (from == (time_t)-1 || now < from) {
			status |= GNUTLS_CERT_NOT_ACTIVATED | GNUTLS_CERT_INVALID;
		} else if (until == (time_t)-1 || now > until) {
			status |= GNUTLS_CERT_EXPIRED | GNUTLS_CERT_INVALID;
		}
	}
	gnutls_x509_crt_deinit(crt);
	return status;
}

/* GnuTLS calls this in the handshake, once the server's certificate has
 * arrived and before our Finished goes out, in place of its own chain
 * verification; non-zero aborts the handshake. */
static int verify_pinned(gnutls_session_t session)
{
	struct transport *t = gnutls_session_get_ptr(session);
	char *err = t->verify_error;
	if (!note_peer_pin(t)) {
		snprintf(err, sizeof(t->verify_error), "certificate of %s rejected: "
			"no server key to compare with the configured pin %s",
			t->server_name, t->pin);
		return -1;
	}
	if (strcmp(t->peer_pin, t->pin) != 0) {
		snprintf(err, sizeof(t->verify_error), "certificate of %s rejected: "
			"server key %s does not match the configured pin %s",
			t->server_name, t->peer_pin, t->pin);
		return -1;
	}
	unsigned status = t->verify ? leaf_status(t, peer_leaf(t)) : 0;
	if (status != 0) {
		describe_status(t, status, err, sizeof(t->verify_error));
		return -1;
	}
	return 0;
}

/* TLS session setup ------------------------------------------------------- */

static bool is_ip_literal(const char *s)
{
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static bool setup_creds(struct transport *t)
{
	int r = gnutls_certificate_allocate_credentials(&t->cred);
	if (r < 0) {
		fail(t, TRANSPORT_ERR_TLS, "TLS setup failed: %s", gnutls_strerror(r));
		return false;
	}
	r = gnutls_certificate_set_x509_system_trust(t->cred);
	if (r < 0) {
		log_debug("transport %s: no system trust store: %s", t->host,
			gnutls_strerror(r));
	}
	if (t->ca_file == NULL) {
		return true;
	}
	r = gnutls_certificate_set_x509_trust_file(t->cred, t->ca_file, GNUTLS_X509_FMT_PEM);
	if (r <= 0) {
		fail(t, TRANSPORT_ERR_TLS, "cannot load CA file %s: %s", t->ca_file,
			r < 0 ? gnutls_strerror(r) : "no certificate found");
		return false;
	}
	return true;
}

static bool setup_priority(struct transport *t)
{
	const char *prio = t->priority ? t->priority : DEFAULT_PRIORITY;
	const char *where = NULL;
	int r = gnutls_priority_set_direct(t->session, prio, &where);
	if (r < 0) {
		fail(t, TRANSPORT_ERR_TLS, "bad TLS priority string at \"%s\": %s",
			where ? where : prio, gnutls_strerror(r));
		return false;
	}
	return true;
}

static void setup_names(struct transport *t)
{
	const char *name = t->server_name;
	if (!is_ip_literal(name)) {
		gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, name, strlen(name));
	}
	if (t->pin != NULL) {
		gnutls_session_set_verify_function(t->session, verify_pinned);
	} else if (t->verify) {
		gnutls_session_set_verify_cert(t->session, name, 0);
	}
	if (t->direct_tls) {
		gnutls_datum_t alpn = {
			.data = (unsigned char *)"xmpp-client",
			.size = sizeof("xmpp-client") - 1,
		};
		gnutls_alpn_set_protocols(t->session, &alpn, 1, 0);
	}
}

static bool setup_session(struct transport *t)
{
	if (!setup_creds(t)) {
		return false;
	}
	int r = gnutls_init(&t->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
	if (r < 0) {
		t->session = NULL;
		fail(t, TRANSPORT_ERR_TLS, "TLS setup failed: %s", gnutls_strerror(r));
		return false;
	}
	if (!setup_priority(t)) {
		return false;
	}
	r = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, t->cred);
	if (r < 0) {
		fail(t, TRANSPORT_ERR_TLS, "TLS setup failed: %s", gnutls_strerror(r));
		return false;
	}
	setup_names(t);
	gnutls_session_set_ptr(t->session, t);
	gnutls_transport_set_ptr(t->session, t);
	gnutls_transport_set_push_function(t->session, tls_push);
	gnutls_transport_set_pull_function(t->session, tls_pull);
	gnutls_transport_set_pull_timeout_function(t->session, tls_pull_timeout);
	gnutls_handshake_set_timeout(t->session, 0);
	return true;
}

/* Handshake --------------------------------------------------------------- */

static void copy_binding(struct transport *t, gnutls_channel_binding_t type,
	unsigned char *dst, const unsigned char **ptr, size_t *len)
{
	gnutls_datum_t cb = { NULL, 0 };
	*ptr = NULL;
	*len = 0;
	if (gnutls_session_channel_binding(t->session, type, &cb) < 0) {
		return;
	}
	if (cb.size > 0 && cb.size <= 64) {
		memcpy(dst, cb.data, cb.size);
		*ptr = dst;
		*len = cb.size;
	}
	gnutls_free(cb.data);
}

static void fill_info(struct transport *t)
{
	note_peer_pin(t);
	gnutls_protocol_t v = gnutls_protocol_get_version(t->session);
	t->info.version = v == GNUTLS_TLS1_3 ? 13 : v == GNUTLS_TLS1_2 ? 12 : 0;
	copy_binding(t, GNUTLS_CB_TLS_UNIQUE, t->unique, &t->info.tls_unique,
		&t->info.tls_unique_len);
	copy_binding(t, GNUTLS_CB_TLS_EXPORTER, t->exporter, &t->info.tls_exporter,
		&t->info.tls_exporter_len);
	const char *pn = gnutls_protocol_get_name(v);
	const char *cn = gnutls_cipher_get_name(gnutls_cipher_get(t->session));
	snprintf(t->desc, sizeof(t->desc), "%s %s", pn ? pn : "TLS?", cn ? cn : "?");
}

static void trace_peer(struct transport *t)
{
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(t->session, &n);
	gnutls_x509_crt_t crt;
	if (chain == NULL || n == 0 || gnutls_x509_crt_init(&crt) < 0) {
		return;
	}
	gnutls_datum_t dn = { NULL, 0 };
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0 &&
		gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
		log_debug("transport %s: TLS peer certificate %s (chain of %u), key %s",
			t->host, (const char *)dn.data, n,
			t->peer_pin[0] ? t->peer_pin : "unknown");
	}
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

static void trace_handshake(struct transport *t)
{
	char *desc = gnutls_session_get_desc(t->session);
	gnutls_datum_t alpn = { NULL, 0 };
	bool has_alpn = gnutls_alpn_get_selected_protocol(t->session, &alpn) == 0;
	log_debug("transport %s: TLS handshake done: %s, ALPN %.*s, %s, "
		"tls-unique %zu bytes, tls-exporter %zu bytes",
		t->host, desc ? desc : t->desc, has_alpn ? (int)alpn.size : 4,
		has_alpn ? (const char *)alpn.data : "none",
		gnutls_session_is_resumed(t->session) ? "resumed" : "full",
		t->info.tls_unique_len, t->info.tls_exporter_len);
	gnutls_free(desc);
	trace_peer(t);
}

static void handshake_failed(struct transport *t, int r)
{
	unsigned status = gnutls_session_get_verify_cert_status(t->session);
	if (t->verify_error[0] != '\0') {
		fail(t, TRANSPORT_ERR_TLS, "%s", t->verify_error);
	} else if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR && status != 0 &&
		status != (unsigned)-1) {
		describe_status(t, status, t->verify_error, sizeof(t->verify_error));
		fail(t, TRANSPORT_ERR_TLS, "%s", t->verify_error);
	} else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		const char *alert = gnutls_alert_get_name(gnutls_alert_get(t->session));
		fail(t, TRANSPORT_ERR_TLS, "TLS handshake failed: the server sent "
			"the alert \"%s\"", alert ? alert : "unknown");
	} else {
		fail(t, TRANSPORT_ERR_TLS, "TLS handshake failed: %s", gnutls_strerror(r));
	}
}

/*
 * The certificate credentials hold the system trust store, parsed: some
 * 3.5 MiB of heap that nothing needs once the server is verified (the
 * peer's chain stays with the session; renegotiation is refused). They
 * go, and the heap is given back, so that an idle daemon over TLS costs
 * what one without it does; the next connection loads them again.
 */
static void drop_creds(struct transport *t)
{
	gnutls_credentials_clear(t->session);
	gnutls_certificate_free_credentials(t->cred);
	t->cred = NULL;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void handshake_done(struct transport *t)
{
	uv_timer_stop(&t->timer);
	fill_info(t);
	t->tls_up = true;
	enter_state(t, TS_TLS);
	if (log_tracing(TRACE_TLS)) {
		trace_handshake(t);
	}
	drop_creds(t);
	flush_early(t);
	if (!alive(t, TS_TLS)) {
		return;
	}
	if (t->direct_tls) {
		if (t->cb.connected != NULL) {
			t->cb.connected(t->ud, &t->info);
		}
	} else if (t->cb.tls_ready != NULL) {
		t->cb.tls_ready(t->ud, &t->info);
	}
	if (alive(t, TS_TLS)) {
		drain(t);
	}
}

/* Runs the handshake as far as the queued ciphertext allows. */
static void do_handshake(struct transport *t)
{
	for (;;) {
		size_t before = t->in_off;
		t->pull_empty = false;
		int r = gnutls_handshake(t->session);
		if (r == 0) {
			break;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (t->pull_empty || t->in_off == before) {
				flush(t);
				return;
			}
			continue;
		}
		if (!gnutls_error_is_fatal(r)) {
			log_debug("transport %s: TLS handshake: %s (ignored)", t->host,
				gnutls_strerror(r));
			continue;
		}
		flush(t);
		handshake_failed(t, r);
		return;
	}
	flush(t);
	handshake_done(t);
}

static void start_tls(struct transport *t)
{
	enter_state(t, TS_HANDSHAKE);
	if (!setup_session(t)) {
		return;
	}
	if (log_tracing(TRACE_TLS)) {
		log_debug("transport %s: TLS handshake with %s (%s), priority %s",
			t->host, t->cur_addr, t->server_name,
			t->priority ? t->priority : DEFAULT_PRIORITY);
	}
	buf_reset(&t->in);
	t->in_off = 0;
	uv_timer_start(&t->timer, on_timer, t->timeout_ms, 0);
	do_handshake(t);
}

/* Connecting -------------------------------------------------------------- */

static void note_error(struct transport *t, const char *what)
{
	if (t->errors.len >= ERRORS_MAX) {
		return;
	}
	buf_printf(&t->errors, "%s%s: %s", t->errors.len ? "; " : "", t->cur_ip, what);
}

static void on_connected(struct transport *t)
{
	uv_tcp_nodelay(&t->tcp, 1);
	uv_tcp_keepalive(&t->tcp, 1, KEEPALIVE_S);
	int r = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
	if (r < 0) {
		fail(t, TRANSPORT_ERR_IO, "read from %s failed: %s", t->cur_addr,
			uv_strerror(r));
		return;
	}
	log_debug("transport %s: connected to %s", t->host, t->cur_addr);
	if (t->direct_tls) {
		start_tls(t);
		return;
	}
	enter_state(t, TS_PLAIN);
	flush_early(t);
	if (alive(t, TS_PLAIN) && t->cb.connected != NULL) {
		t->cb.connected(t->ud, NULL);
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	struct transport *t = req->handle->data;
	if (status == UV_ECANCELED || t->state != TS_CONNECTING || t->freeing) {
		return;
	}
	uv_timer_stop(&t->timer);
	if (status < 0) {
		note_error(t, uv_strerror(status));
		close_tcp(t);
		return;
	}
	on_connected(t);
}

static void on_timer(uv_timer_t *timer)
{
	struct transport *t = timer->data;
	if (t->freeing) {
		close_all(t);
	} else if (t->state == TS_CONNECTING) {
		note_error(t, "timed out");
		close_tcp(t);
	} else if (t->state == TS_HANDSHAKE) {
		fail(t, TRANSPORT_ERR_TLS, "TLS handshake with %s timed out", t->cur_addr);
	}
}

static void format_addr(struct transport *t, const struct addrinfo *ai)
{
	char *ip = t->cur_ip;
	snprintf(ip, sizeof(t->cur_ip), "?");
	if (ai->ai_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(t->cur_ip));
		snprintf(t->cur_addr, sizeof(t->cur_addr), "[%s]:%d", ip, t->port);
	} else {
		uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof(t->cur_ip));
		snprintf(t->cur_addr, sizeof(t->cur_addr), "%s:%d", ip, t->port);
	}
}

/* Starts one attempt; false when it failed at once (the close callback
 * of the TCP handle then moves on). */
static bool attempt(struct transport *t, const struct addrinfo *ai)
{
	format_addr(t, ai);
	log_debug("transport %s: trying %s", t->host, t->cur_addr);
	int r = uv_tcp_init(t->loop, &t->tcp);
	if (r < 0) {
		note_error(t, uv_strerror(r));
		return false;
	}
	t->tcp.data = t;
	t->tcp_open = true;
	t->refs++;
	r = uv_tcp_connect(&t->connect_req, &t->tcp, ai->ai_addr, on_connect);
	if (r < 0) {
		note_error(t, uv_strerror(r));
		close_tcp(t);
		return true;
	}
	uv_timer_start(&t->timer, on_timer, t->timeout_ms, 0);
	return true;
}

static void try_next(struct transport *t)
{
	while (t->next_addr != NULL) {
		struct addrinfo *ai = t->next_addr;
		t->next_addr = ai->ai_next;
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
			continue;
		}
		if (attempt(t, ai)) {
			return;
		}
	}
	fail(t, TRANSPORT_ERR_CONNECT, "cannot connect to %s port %d: %s", t->host,
		t->port, t->errors.len ? t->errors.data : "no usable address");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct transport *t = req->data;
	t->gai_pending = false;
	if (t->freeing || t->state != TS_RESOLVING) {
		uv_freeaddrinfo(res);
		unref(t);
		return;
	}
	t->refs--;
	if (status < 0) {
		fail(t, TRANSPORT_ERR_RESOLVE, "cannot resolve %s: %s", t->host,
			uv_strerror(status));
		return;
	}
	t->addrs = res;
	t->next_addr = res;
	enter_state(t, TS_CONNECTING);
	try_next(t);
}

/* Public interface -------------------------------------------------------- */

/* Creates an idle transport; cfg's strings are copied. */
struct transport *transport_new(uv_loop_t *loop,
	const struct transport_config *cfg, const struct transport_cb *cb,
	void *ud)
{
	struct transport *t = xcalloc(1, sizeof(*t));
	t->rbuf = xmalloc(READ_BUF_SIZE);
	t->loop = loop;
	t->cb = *cb;
	t->ud = ud;
	t->host = xstrdup(cfg->host);
	t->server_name = xstrdup(cfg->server_name ? cfg->server_name : cfg->host);
	t->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
	t->priority = cfg->priority ? xstrdup(cfg->priority) : NULL;
	t->pin = cfg->pin ? xstrdup(cfg->pin) : NULL;
	t->port = cfg->port;
	t->direct_tls = cfg->direct_tls;
	t->verify = cfg->verify;
	t->timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
	buf_init(&t->errors);
	buf_init(&t->in);
	buf_init(&t->out);
	buf_init(&t->early);
	uv_timer_init(loop, &t->timer);
	uv_timer_init(loop, &t->defer);
	t->timer.data = t;
	t->defer.data = t;
	t->refs = 2;
	snprintf(t->cur_addr, sizeof(t->cur_addr), "%s:%d", t->host, t->port);
	return t;
}

/* Starts the lookup; the attempts follow from its callback. */
void transport_connect(struct transport *t)
{
	if (!xassert(t->state == TS_IDLE, "transport_connect twice")) {
		return;
	}
	enter_state(t, TS_RESOLVING);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
	};
	char port[16];
	snprintf(port, sizeof(port), "%d", t->port);
	t->gai.data = t;
	int r = uv_getaddrinfo(t->loop, &t->gai, on_resolved, t->host, port, &hints);
	if (r < 0) {
		fail(t, TRANSPORT_ERR_RESOLVE, "cannot resolve %s: %s", t->host,
			uv_strerror(r));
		return;
	}
	t->gai_pending = true;
	t->refs++;
}

/* Queues plaintext: sent now when the link is up, else kept until it is. */
void transport_write(struct transport *t, const char *data, size_t len)
{
	if (t->quiet || t->state == TS_DONE || len == 0) {
		return;
	}
	if (t->state == TS_TLS) {
		send_tls(t, data, len);
		flush(t);
	} else if (t->state == TS_PLAIN) {
		buf_append(&t->out, data, len);
		flush(t);
	} else {
		buf_append(&t->early, data, len);
	}
}

/* Starts the handshake on the plain connection. */
void transport_starttls(struct transport *t)
{
	if (!xassert(t->state == TS_PLAIN && !t->quiet,
			"transport_starttls in state %s", state_name(t->state))) {
		return;
	}
	start_tls(t);
}

/* True once the handshake has completed. */
bool transport_is_tls(const struct transport *t)
{
	return t->tls_up && t->state == TS_TLS;
}

/* A freed transport that had shut down closes once its writes are out
 * and the server has closed too: closing with unread input would make
 * the kernel send a reset and drop what we had still queued. */
static void end_linger(struct transport *t)
{
	if (t->freeing && !t->shutdown_pending && t->peer_closed) {
		close_all(t);
	}
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct transport *t = req->handle->data;
	t->shutdown_pending = false;
	if (status < 0) {
		log_debug("transport %s: shutdown: %s", t->host, uv_strerror(status));
		t->peer_closed = true;
	}
	end_linger(t);
}

/* Sends close_notify, flushes and shuts the socket down for writing. */
void transport_shutdown(struct transport *t)
{
	if (t == NULL || t->quiet) {
		return;
	}
	t->quiet = true;
	uv_timer_stop(&t->defer);
	uv_timer_stop(&t->timer);
	if (t->read_paused || t->paused) {
		/* Lingering reads (and drops) what the server still sends. */
		t->paused = false;
		resume_reading(t);
	}
	if (t->state == TS_TLS) {
		gnutls_bye(t->session, GNUTLS_SHUT_WR);
	}
	if (t->state == TS_PLAIN || t->state == TS_TLS || t->state == TS_HANDSHAKE) {
		flush(t);
		int r = uv_shutdown(&t->shutdown_req, (uv_stream_t *)&t->tcp, on_shutdown);
		t->shutdown_pending = r == 0;
		t->shut = r == 0;
	} else {
		if (t->gai_pending) {
			uv_cancel((uv_req_t *)&t->gai);
		}
		close_tcp(t);
	}
	enter_state(t, TS_DONE);
}

/* Closes everything; memory goes with the last close callback. After
 * transport_shutdown it first waits (LINGER_MS at most) for the writes
 * to go out and for the server to close its side. */
void transport_free(struct transport *t)
{
	if (t == NULL || t->freeing) {
		return;
	}
	t->freeing = true;
	t->quiet = true;
	bool open = t->tcp_open && !uv_is_closing((uv_handle_t *)&t->tcp);
	if (open && t->shut && (t->shutdown_pending || !t->peer_closed)) {
		uv_timer_start(&t->timer, on_timer, LINGER_MS, 0);
		return;
	}
	close_all(t);
}

/* "TLS1.3 AES-256-GCM" or NULL without TLS. */
const char *transport_tls_desc(const struct transport *t)
{
	return t->tls_up ? t->desc : NULL;
}

/* Bytes accepted by transport_write and not yet written to the socket. */
size_t transport_pending(const struct transport *t)
{
	return t->inflight + t->out.len + t->early.len;
}

/* The server key's "sha256/..." pin once TLS is up, else NULL. */
const char *transport_peer_pin(const struct transport *t)
{
	return t->tls_up && t->peer_pin[0] != '\0' ? t->peer_pin : NULL;
}
