#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/run.h"
#include "proto/alloc.h"

extern char **environ;

/* The variables set for a message, and the event fields they carry. */
static const struct {
	const char *name;
	const char *field;
} vars[] = {
	{ "XMPP_FROM", "from" },
	{ "XMPP_TO", "to" },
	{ "XMPP_TYPE", "type" },
	{ "XMPP_BODY", "body" },
	{ "XMPP_SUBJECT", "subject" },
	{ "XMPP_THREAD", "thread" },
	{ "XMPP_MSG_ID", "msg_id" },
	{ "XMPP_STANZA_ID", "stanza_id" },
	{ "XMPP_SEQ", "seq" },
	{ "XMPP_ROOM", "room" },
	{ "XMPP_NICK", "nick" },
	{ "XMPP_CARBON", "carbon" },
	{ "XMPP_DELAY", "delay" },
};

#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* Is entry ("NAME=value") one of the variables we set? */
static bool is_ours(const char *entry)
{
	const char *eq = strchr(entry, '=');
	size_t len = eq != NULL ? (size_t)(eq - entry) : strlen(entry);
	for (size_t i = 0; i < NVARS; i++) {
		if (strlen(vars[i].name) == len
				&& memcmp(vars[i].name, entry, len) == 0) {
			return true;
		}
	}
	return false;
}

/* "NAME=value" for a string or integer field, else NULL. */
static char *entry_for(const char *name, const json_t *v)
{
	if (json_is_string(v)) {
		return xasprintf("%s=%s", name, json_string_value(v));
	}
	if (json_is_integer(v)) {
		return xasprintf("%s=%" JSON_INTEGER_FORMAT, name,
			json_integer_value(v));
	}
	return NULL;
}

char **run_env(char *const *base, const json_t *ev)
{
	size_t n = 0;
	while (base != NULL && base[n] != NULL) {
		n++;
	}
	char **env = xcalloc(n + NVARS + 1, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_ours(base[i])) {
			env[k++] = xstrdup(base[i]);
		}
	}
	for (size_t i = 0; i < NVARS; i++) {
		char *e = entry_for(vars[i].name, json_object_get(ev,
			vars[i].field));
		if (e != NULL) {
			env[k++] = e;
		}
	}
	env[k] = NULL;
	return env;
}

void run_env_free(char **env)
{
	if (env == NULL) {
		return;
	}
	for (size_t i = 0; env[i] != NULL; i++) {
		free(env[i]);
	}
	free(env);
}

/* In the child: stdin from /dev/null, then the shell; never returns. */
static void exec_child(const char *cmd, char **env)
{
	int fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != STDIN_FILENO) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	execve("/bin/sh", argv, env);
	fprintf(stderr, "xmppctl: /bin/sh: %s\n", strerror(errno));
	_exit(127);
}

/* Waits for pid; its exit status, or 128 + the signal. */
static int wait_child(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			return 127;
		}
	}
	if (WIFSIGNALED(st)) {
		return 128 + WTERMSIG(st);
	}
	return WEXITSTATUS(st);
}

int run_command(const char *cmd, const json_t *ev, char **cause)
{
	char **env = run_env(environ, ev);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		exec_child(cmd, env);
	}
	run_env_free(env);
	if (pid < 0) {
		*cause = xasprintf("cannot start the command: fork: %s",
			strerror(errno));
		return -1;
	}
	return wait_child(pid);
}
