#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/caps.h"
#include "daemon/disco.h"
#include "proto/ns.h"
#include "proto/reader.h"

static struct xml *parse(const char *s)
{
	const char *err = NULL;
	struct xml *x = reader_parse_element(s, strlen(s), NS_CLIENT, &err);
	cr_assert(x != NULL, "parse: %s", err ? err : "?");
	return x;
}

static void expect_ver(const char *query, const char *ver)
{
	struct xml *q = parse(query);
	char *got = caps_ver(q);
	cr_assert(got != NULL);
	cr_expect(eq(str, got, (char *)ver));
	free(got);
	xml_free(q);
}

static void expect_ill_formed(const char *query)
{
	struct xml *q = parse(query);
	cr_expect(caps_string(q) == NULL);
	cr_expect(caps_ver(q) == NULL);
	xml_free(q);
}

/* XEP-0115 5.2, "Simple Generation Example". */
static const char simple[] =
	"<query xmlns='http://jabber.org/protocol/disco#info'"
	" node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>"
	"<identity category='client' name='Exodus 0.9.1' type='pc'/>"
	"<feature var='http://jabber.org/protocol/caps'/>"
	"<feature var='http://jabber.org/protocol/disco#info'/>"
	"<feature var='http://jabber.org/protocol/disco#items'/>"
	"<feature var='http://jabber.org/protocol/muc'/>"
	"</query>";

Test(caps, xep_simple_example_string)
{
	struct xml *q = parse(simple);
	char *s = caps_string(q);
	cr_assert(s != NULL);
	cr_expect(eq(str, s, "client/pc//Exodus 0.9.1<"
		"http://jabber.org/protocol/caps<"
		"http://jabber.org/protocol/disco#info<"
		"http://jabber.org/protocol/disco#items<"
		"http://jabber.org/protocol/muc<"));
	free(s);
	xml_free(q);
}

Test(caps, xep_simple_example_ver)
{
	expect_ver(simple, "QgayPKawpkPSDYmwT/WM94uAlu0=");
}

Test(caps, order_of_features_does_not_matter)
{
	expect_ver("<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<feature var='http://jabber.org/protocol/muc'/>"
		"<feature var='http://jabber.org/protocol/disco#items'/>"
		"<identity type='pc' category='client' name='Exodus 0.9.1'/>"
		"<feature var='http://jabber.org/protocol/caps'/>"
		"<feature var='http://jabber.org/protocol/disco#info'/>"
		"</query>", "QgayPKawpkPSDYmwT/WM94uAlu0=");
}

/* XEP-0115 5.3, "Complex Generation Example", fields shuffled and
 * with whitespace as a pretty-printed stanza has it. */
static const char complex_example[] =
	"<query xmlns='http://jabber.org/protocol/disco#info'"
	" node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>\n"
	"  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\n"
	"  <identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>\n"
	"  <feature var='http://jabber.org/protocol/caps'/>\n"
	"  <feature var='http://jabber.org/protocol/disco#info'/>\n"
	"  <feature var='http://jabber.org/protocol/disco#items'/>\n"
	"  <feature var='http://jabber.org/protocol/muc'/>\n"
	"  <x xmlns='jabber:x:data' type='result'>\n"
	"    <field var='os_version'><value>10.5.1</value></field>\n"
	"    <field var='FORM_TYPE' type='hidden'>\n"
	"      <value>urn:xmpp:dataforms:softwareinfo</value>\n"
	"    </field>\n"
	"    <field var='ip_version'><value>ipv6</value><value>ipv4</value></field>\n"
	"    <field var='os'><value>Mac</value></field>\n"
	"    <field var='software_version'><value>0.11</value></field>\n"
	"    <field var='software'><value>Psi</value></field>\n"
	"  </x>\n"
	"</query>";

Test(caps, xep_complex_example_string)
{
	struct xml *q = parse(complex_example);
	char *s = caps_string(q);
	cr_assert(s != NULL);
	cr_expect(eq(str, s, "client/pc/el/\xce\xa8 0.11<client/pc/en/Psi 0.11<"
		"http://jabber.org/protocol/caps<"
		"http://jabber.org/protocol/disco#info<"
		"http://jabber.org/protocol/disco#items<"
		"http://jabber.org/protocol/muc<"
		"urn:xmpp:dataforms:softwareinfo<"
		"ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<"
		"software<Psi<software_version<0.11<"));
	free(s);
	xml_free(q);
}

Test(caps, xep_complex_example_ver)
{
	expect_ver(complex_example, "q07IKJEyjvHSyhy//CH0CxmKi8w=");
}

Test(caps, forms_sort_by_form_type_and_fields_by_var)
{
	struct xml *q = parse("<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:b</value></field>"
		"<field var='os-x'><value>1</value></field>"
		"<field var='os'><value>2</value></field>"
		"</x>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:a</value></field>"
		"</x>"
		"</query>");
	char *s = caps_string(q);
	cr_assert(s != NULL);
	cr_expect(eq(str, s, "urn:a<urn:b<os<2<os-x<1<"));
	free(s);
	xml_free(q);
}

Test(caps, forms_without_hidden_form_type_are_ignored)
{
	struct xml *q = parse("<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<feature var='f'/>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE'><value>urn:shown</value></field>"
		"<field var='a'><value>1</value></field></x>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='a'><value>1</value></field></x>"
		"</query>");
	char *s = caps_string(q);
	cr_assert(s != NULL);
	cr_expect(eq(str, s, "f<"));
	free(s);
	xml_free(q);
}

Test(caps, repeated_feature_is_ill_formed)
{
	expect_ill_formed("<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<identity category='client' type='pc'/>"
		"<feature var='a'/><feature var='b'/><feature var='a'/></query>");
}

Test(caps, repeated_identity_is_ill_formed)
{
	expect_ill_formed("<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<identity category='client' type='pc' name='x'/>"
		"<identity type='pc' name='x' category='client'/></query>");
}

Test(caps, repeated_form_type_is_ill_formed)
{
	expect_ill_formed("<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:a</value></field></x>"
		"</query>");
}

Test(caps, form_type_with_two_values_is_ill_formed)
{
	expect_ill_formed("<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<x xmlns='jabber:x:data' type='result'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:a</value>"
		"<value>urn:b</value></field></x></query>");
}

Test(caps, own_info_hashes_and_lists_what_we_implement)
{
	struct xml *q = disco_own_info(NULL, NULL);
	char *s = caps_string(q);
	cr_assert(s != NULL);
	cr_expect(strncmp(s, "client/bot//xmppd<", 18) == 0, "%s", s);
	cr_expect(strstr(s, "<" NS_CAPS "<") != NULL, "%s", s);
	cr_expect(strstr(s, "<" NS_PING "<") != NULL, "%s", s);
	cr_expect(strstr(s, "<" NS_TIME "<") != NULL, "%s", s);
	free(s);
	char *ver = caps_ver(q);
	cr_assert(ver != NULL);
	cr_expect(eq(sz, strlen(ver), 28));
	free(ver);
	xml_free(q);
}
