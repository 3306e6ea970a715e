#include <string.h>

#include "proto/error.h"
#include "proto/ns.h"

const char *stanza_error(const struct xml *stanza, char **text)
{
	const struct xml *err = xml_child(stanza, "error", NULL);
	*text = NULL;
	if (err == NULL) {
		return "undefined-condition";
	}
	*text = xml_child_text(err, "text", NS_STANZA_ERRORS);
	for (const struct xml *c = xml_first_element(err); c != NULL;
			c = xml_next_element(c)) {
		if (c->ns != NULL && strcmp(c->ns, NS_STANZA_ERRORS) == 0 &&
				strcmp(c->name, "text") != 0) {
			return c->name;
		}
	}
	return "undefined-condition";
}
