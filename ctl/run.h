/*
 * listen --exec: runs the user's command once per message with the
 * message in environment variables, never in the command line, so no
 * text from the network reaches a shell parser.
 */
#ifndef XMPPD_CTL_RUN_H
#define XMPPD_CTL_RUN_H

#include <jansson.h>

/*
 * A new environment for ev: base without any of the XMPP_* variables
 * this module sets, then XMPP_FROM, XMPP_TO, XMPP_TYPE, XMPP_BODY,
 * XMPP_SUBJECT, XMPP_THREAD, XMPP_MSG_ID, XMPP_STANZA_ID, XMPP_SEQ,
 * XMPP_ROOM, XMPP_NICK, XMPP_CARBON and XMPP_DELAY for the fields ev has.
 * NULL-terminated; free it with run_env_free.
 */
char **run_env(char *const *base, const json_t *ev);

/* Frees what run_env returned; accepts NULL. */
void run_env_free(char **env);

/*
 * Runs "/bin/sh -c cmd" with stdin from /dev/null and the environment of
 * run_env(environ, ev), and waits for it. Returns its exit status, 128 +
 * the signal that killed it, or -1 with *cause set when it could not be
 * started.
 */
int run_command(const char *cmd, const json_t *ev, char **cause);

#endif
