#include <jansson.h>

#include "daemon/console.h"
#include "daemon/events.h"
#include "daemon/log.h"

bool console_wanted(void)
{
	return log_tracing(TRACE_XML) || events_wanted("xml");
}

void console_trace(bool out, const char *data, size_t len)
{
	if (log_tracing(TRACE_XML)) {
		log_info("%s %.*s", out ? "SEND" : "RECV", (int)len, data);
	}
	if (!events_wanted("xml")) {
		return;
	}
	json_t *text = json_stringn(data, len);
	if (text == NULL) {
		log_debug("console: an element that is not UTF-8 was left out");
		return;
	}
	json_t *ev = json_object();
	json_object_set_new(ev, "dir", json_string(out ? "out" : "in"));
	json_object_set_new(ev, "xml", text);
	events_publish("xml", ev);
}
