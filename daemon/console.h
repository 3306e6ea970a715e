/*
 * The XML console: every element in and out of the stream, as the
 * stream's trace shows it (SASL payloads already redacted by proto/),
 * written to the log under the xml trace and published as "xml" events
 * while a control-socket client subscribes to them. The session turns
 * the stream's trace on only while console_wanted() holds, so nothing is
 * serialized for nobody.
 */
#ifndef XMPPD_DAEMON_CONSOLE_H
#define XMPPD_DAEMON_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

/* Is anyone reading: the xml log trace or an "xml" subscriber? */
bool console_wanted(void);
/* One element received (out false) or sent, as text. */
void console_trace(bool out, const char *data, size_t len);

#endif
