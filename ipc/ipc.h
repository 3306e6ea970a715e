/*
 * The control socket (DESIGN.md section 4): what main.c needs to start and
 * stop it. Everything else about ipc/ stays inside ipc/.
 */
#ifndef XMPPD_IPC_IPC_H
#define XMPPD_IPC_IPC_H

#include <uv.h>

struct config;
struct xmppd;
struct ipc;

/*
 * Creates the socket directory (0700) and socket (0600) at cfg->socket or
 * $XDG_RUNTIME_DIR/xmppd/xmppd.sock, refusing to replace the socket of a
 * live daemon and replacing a stale one, starts listening and plugs the
 * event sink into daemon/events. Returns NULL with *cause set (caller
 * frees) on failure.
 */
struct ipc *ipc_new(uv_loop_t *loop, struct xmppd *x, const struct config *cfg,
	char **cause);
/*
 * Like ipc_new, but serves on fd, a listening AF_UNIX stream socket made
 * by someone else (systemd socket activation), whose peer-uid check
 * stays the same. ipc owns fd from then on (made non-blocking and
 * close-on-exec) but never unlinks its path, which belongs to whoever
 * created it. Returns NULL with *cause set (caller frees, and still owns
 * fd) if fd is not such a socket.
 */
struct ipc *ipc_new_from_fd(uv_loop_t *loop, struct xmppd *x,
	const struct config *cfg, int fd, char **cause);
/* The socket path in use. */
const char *ipc_path(const struct ipc *ipc);
/* Disconnects every client after flushing what can be flushed, closes the
 * listener, unlinks the socket (unless it came from ipc_new_from_fd) and
 * frees everything from the close callbacks (run the loop afterwards);
 * accepts NULL. */
void ipc_free(struct ipc *ipc);

#endif
