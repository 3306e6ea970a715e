/*
 * xmppd: keeps one XMPP account online and serves local programs over a
 * Unix socket. main wires configuration, logging, the daemon core and the
 * control socket together around one libuv loop.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/xmppd.h"
#include "ipc/ipc.h"
#include "proto/alloc.h"

struct app {
	uv_loop_t *loop;
	struct config cfg;
	struct xmppd *core;
	struct ipc *ipc;
	uv_signal_t sigterm;
	uv_signal_t sigint;
	uv_signal_t sighup;
	uv_timer_t deadline;	/* a quit that hangs ends here */
	uv_timer_t watchdog;	/* systemd's, when it asks for pings */
	bool verbose;		/* -v: debug whatever the file says */
};

static void usage(FILE *f)
{
	fputs("usage: xmppd [-c FILE] [-n] [-v] [--version] [--help]\n"
		"  -c, --config FILE  configuration file (default:\n"
		"                     $XDG_CONFIG_HOME/xmppd/xmppd.conf)\n"
		"  -n, --check        check the configuration and exit\n"
		"  -v, --verbose      log at debug level\n"
		"      --version      print the version and exit\n"
		"  -h, --help         this help\n", f);
}

static void close_handle(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h)) {
		uv_close(h, NULL);
	}
}

static void stopped_cb(void *ud)
{
	struct app *app = ud;
	log_info("stopped");
	ipc_free(app->ipc);
	app->ipc = NULL;
	xmppd_free(app->core);
	app->core = NULL;
	uv_walk(app->loop, close_handle, NULL);
}

static void deadline_cb(uv_timer_t *t)
{
	struct app *app = t->data;
	log_warnx("shutdown took too long; stopping now");
	stopped_cb(app);
}

static void quit_cb(uv_signal_t *s, int signum)
{
	struct app *app = s->data;
	log_info("%s: shutting down", strsignal(signum));
	uv_timer_start(&app->deadline, deadline_cb, 5000, 0);
	uv_unref((uv_handle_t *)&app->deadline);
	xmppd_quit(app->core);
}

/*
 * SIGHUP: read the configuration again. A file with an error changes
 * nothing; the account itself (jid) cannot change under a running
 * daemon. The new settings apply from the next connection; a daemon
 * stopped by auth-failed or tls-failed tries again at once.
 */
static void reload(struct app *app)
{
	struct config fresh;
	char *cause = NULL;
	config_init(&fresh);
	if (config_load(&fresh, app->cfg.path, &cause) < 0) {
		log_error("reload: %s; keeping the configuration in use", cause);
		free(cause);
		config_finish(&fresh);
		return;
	}
	if (strcmp(fresh.jid, app->cfg.jid) != 0) {
		log_error("reload: [account] jid changed; restart xmppd to change "
			"the account. Keeping the configuration in use");
		config_finish(&fresh);
		return;
	}
	config_finish(&app->cfg);
	app->cfg = fresh;
	log_init(app->verbose ? LOG_DEBUG : app->cfg.log_level,
		app->cfg.log_xml ? TRACE_XML : 0);
	log_info("reloaded %s", app->cfg.path);
	xmppd_reloaded(app->core);
}

/* systemd hears RELOADING=1 before and READY=1 after, whatever the
 * outcome, so `systemctl reload` returns once the file was read. */
static void hup_cb(uv_signal_t *s, int signum)
{
	struct app *app = s->data;
	notify_reloading();
	reload(app);
	notify_ready();
}

static int parse_args(int argc, char **argv, char **path, bool *check, bool *verbose)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:nvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			free(*path);
			*path = xstrdup(optarg);
			break;
		case 'n':
			*check = true;
			break;
		case 'v':
			*verbose = true;
			break;
		case 'V':
			printf("xmppd %s\n", XMPPD_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xmppd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

static void start_signals(struct app *app)
{
	uv_signal_init(app->loop, &app->sigterm);
	uv_signal_init(app->loop, &app->sigint);
	uv_signal_init(app->loop, &app->sighup);
	uv_timer_init(app->loop, &app->deadline);
	app->sigterm.data = app->sigint.data = app->sighup.data = app;
	app->deadline.data = app;
	uv_signal_start(&app->sigterm, quit_cb, SIGTERM);
	uv_signal_start(&app->sigint, quit_cb, SIGINT);
	uv_signal_start(&app->sighup, hup_cb, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit (ulimit -f) a write fails with EFBIG, which
	 * the store reports, instead of killing the daemon. */
	signal(SIGXFSZ, SIG_IGN);
}

/* The control socket: the one systemd passed (socket activation), else
 * one of our own at [control] socket. */
static struct ipc *open_control(struct app *app, char **cause)
{
	int fd;
	int rc = notify_listen_fd(&fd, cause);
	if (rc <= 0) {
		return rc < 0 ? NULL : ipc_new(app->loop, app->core, &app->cfg, cause);
	}
	struct ipc *ipc = ipc_new_from_fd(app->loop, app->core, &app->cfg, fd,
		cause);
	if (ipc == NULL) {
		close(fd);
		return NULL;
	}
	log_info("socket activation: serving the socket systemd passed");
	if (app->cfg.socket != NULL && strcmp(app->cfg.socket, ipc_path(ipc)) != 0) {
		log_warnx("socket activation: [control] socket %s is not used",
			app->cfg.socket);
	}
	return ipc;
}

/* Ready once the socket listens, before the account is online: the
 * socket is the service. STATUS= then follows the connection state. */
static void start_notify(struct app *app)
{
	events_add_sink(notify_state_sink, notify_state_wanted, app);
	notify_watchdog_start(app->loop, &app->watchdog);
	notify_ready();
}

int main(int argc, char **argv)
{
	char *path = NULL;
	bool check = false;
	bool verbose = false;
	if (parse_args(argc, argv, &path, &check, &verbose) < 0) {
		return 2;
	}
	if (path == NULL) {
		path = config_default_path();
	}
	struct app app = { .verbose = verbose };
	log_init(LOG_INFO, 0);
	config_init(&app.cfg);
	char *cause = NULL;
	if (config_load(&app.cfg, path, &cause) < 0) {
		fprintf(stderr, "xmppd: %s\n", cause);
		free(cause);
		free(path);
		config_finish(&app.cfg);
		return 1;
	}
	free(path);
	if (check) {
		puts("configuration OK");
		config_finish(&app.cfg);
		return 0;
	}
	log_init(verbose ? LOG_DEBUG : app.cfg.log_level,
		app.cfg.log_xml ? TRACE_XML : 0);

	app.loop = uv_default_loop();
	events_init(0);
	app.core = xmppd_new(app.loop, &app.cfg);
	app.ipc = open_control(&app, &cause);
	if (app.ipc == NULL) {
		log_error("control socket: %s", cause);
		free(cause);
		xmppd_free(app.core);
		uv_run(app.loop, UV_RUN_DEFAULT);
		uv_loop_close(app.loop);
		events_finish();
		config_finish(&app.cfg);
		return 1;
	}
	log_info("xmppd %s listening on %s", XMPPD_VERSION, ipc_path(app.ipc));
	xmppd_on_stopped(app.core, stopped_cb, &app);
	start_signals(&app);
	start_notify(&app);
	xmppd_start(app.core);
	uv_run(app.loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(app.loop);
	if (rc != 0) {
		log_warnx("the loop closed with handles open: %s", uv_strerror(rc));
	}
	events_finish();
	config_finish(&app.cfg);
	return 0;
}
