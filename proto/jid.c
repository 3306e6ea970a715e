/*
 * JID parsing and preparation (RFC 7622).
 *
 * The string is split at the first '/' (everything after it is the
 * resourcepart) and then at the first '@' before that '/' (everything
 * before it is the localpart). Each part is prepared on its own:
 *
 * - localpart: PRECIS UsernameCaseMapped (RFC 8265 3.3) over the
 *   IdentifierClass (RFC 8264 9.1), plus the eight characters RFC 7622 3.3.1
 *   forbids in localparts.
 * - domainpart: IDNA2008 through libidn2, see prep_domain().
 * - resourcepart: PRECIS OpaqueString (RFC 8265 4.2) over the
 *   FreeformClass (RFC 8264 9.2). Leading and trailing spaces are allowed:
 *   RFC 7622 errata 4560 withdrew the example that said otherwise.
 *
 * PRECIS parts are decoded into a UTF-32 buffer (struct ustr), mapped in
 * place or into a new buffer, normalised to NFC, checked code point by code
 * point against the derived property of RFC 8264 section 8 and the
 * contextual rules of RFC 5892 appendix A, and encoded back to UTF-8.
 * Prepared parts are canonical, so comparison is a byte comparison.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "proto/alloc.h"
#include "proto/jid.h"

/* RFC 7622: each part is 1 to 1023 octets once prepared. */
#define JID_PART_MAX 1023
/*
 * Parts longer than this are refused before any preparation, so a hostile
 * megabyte costs nothing. The PRECIS mappings shrink text by at most a
 * factor of three (U+FF21 or U+212A to one ASCII byte, three conjoining
 * jamo to one syllable), so no local- or resourcepart that could prepare
 * to 1023 bytes is refused. UTS #46 deletes some code points (U+00AD)
 * from domains, but a DNS name has at most 253 bytes left anyway.
 */
#define JID_RAW_MAX (4 * JID_PART_MAX)

/* A UTF-32 string being prepared. */
struct ustr {
	ucs4_t *s;
	size_t n;
	size_t cap;
};

/* What RFC 8264 section 8 derives for one code point. */
enum precis_prop {
	PROP_PVALID,
	PROP_CONTEXTJ,
	PROP_CONTEXTO,
	PROP_DISALLOWED,
};

/* RFC 5892 section 2.6, which PRECIS applies before anything else. */
static const struct {
	ucs4_t lo;
	ucs4_t hi;
	enum precis_prop prop;
} exceptions[] = {
	{ 0x00b7, 0x00b7, PROP_CONTEXTO },
	{ 0x00df, 0x00df, PROP_PVALID },
	{ 0x0375, 0x0375, PROP_CONTEXTO },
	{ 0x03c2, 0x03c2, PROP_PVALID },
	{ 0x05f3, 0x05f4, PROP_CONTEXTO },
	{ 0x0640, 0x0640, PROP_DISALLOWED },
	{ 0x0660, 0x0669, PROP_CONTEXTO },
	{ 0x06f0, 0x06f9, PROP_CONTEXTO },
	{ 0x06fd, 0x06fe, PROP_PVALID },
	{ 0x07fa, 0x07fa, PROP_DISALLOWED },
	{ 0x0f0b, 0x0f0b, PROP_PVALID },
	{ 0x3007, 0x3007, PROP_PVALID },
	{ 0x302e, 0x302f, PROP_DISALLOWED },
	{ 0x3031, 0x3035, PROP_DISALLOWED },
	{ 0x303b, 0x303b, PROP_DISALLOWED },
	{ 0x30fb, 0x30fb, PROP_CONTEXTO },
};

#define LETTER_DIGITS (UC_CATEGORY_MASK_Ll | UC_CATEGORY_MASK_Lu | \
	UC_CATEGORY_MASK_Lo | UC_CATEGORY_MASK_Nd | UC_CATEGORY_MASK_Lm | \
	UC_CATEGORY_MASK_Mn | UC_CATEGORY_MASK_Mc)
/* OtherLetterDigits, Spaces, Symbols and Punctuation: FreeformClass only. */
#define FREEFORM_ONLY (UC_CATEGORY_MASK_Lt | UC_CATEGORY_MASK_Nl | \
	UC_CATEGORY_MASK_No | UC_CATEGORY_MASK_Me | UC_CATEGORY_MASK_Zs | \
	UC_CATEGORY_MASK_S | UC_CATEGORY_MASK_P)

static void *unistring_ok(void *p)
{
	/* Inputs are validated first, so libunistring only fails for memory. */
	if (p == NULL) {
		fputs("xmppd: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void ustr_push(struct ustr *u, ucs4_t c)
{
	u->s = xgrow(u->s, &u->cap, u->n + 1, sizeof(*u->s));
	u->s[u->n++] = c;
}

static void ustr_take(struct ustr *u, ucs4_t *s, size_t n)
{
	free(u->s);
	u->s = s;
	u->n = n;
	u->cap = n;
}

static void ustr_decode(struct ustr *u, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	const uint8_t *end = p + n;

	while (p < end) {
		ucs4_t c;
		p += u8_mbtouc_unsafe(&c, p, end - p);
		ustr_push(u, c);
	}
}

static char *ustr_encode(const struct ustr *u, size_t *len)
{
	char *out = xmalloc(u->n * 4 + 1);
	size_t n = 0;

	for (size_t i = 0; i < u->n; i++) {
		n += u8_uctomb((uint8_t *)out + n, u->s[i], 4);
	}
	out[n] = '\0';
	*len = n;
	return out;
}

/* RFC 8265 3.3.1 step 1: fullwidth and halfwidth forms to their
 * decomposition (always a single code point for <wide> and <narrow>). */
static void map_width(struct ustr *u)
{
	for (size_t i = 0; i < u->n; i++) {
		ucs4_t d[UC_DECOMPOSITION_MAX_LENGTH];
		int tag;
		if (u->s[i] < 0x80) {
			continue;
		}
		int len = uc_decomposition(u->s[i], &tag, d);
		if (len == 1 && (tag == UC_DECOMP_WIDE || tag == UC_DECOMP_NARROW)) {
			u->s[i] = d[0];
		}
	}
}

/*
 * Unicode toLowerCase() one code point at a time: full mappings, but no
 * Final_Sigma context, so "ΟΔΟΣ" and "οδοσ" stay equal (golang.org/x/text
 * precis makes the same choice), and no language tailoring (RFC 8265 3.3.1).
 */
static void map_lower(struct ustr *u)
{
	struct ustr out = { 0 };

	for (size_t i = 0; i < u->n; i++) {
		ucs4_t buf[8];
		size_t len = sizeof(buf) / sizeof(buf[0]);
		ucs4_t *r = unistring_ok(u32_tolower(&u->s[i], 1, NULL, NULL,
			buf, &len));
		for (size_t k = 0; k < len; k++) {
			ustr_push(&out, r[k]);
		}
		if (r != buf) {
			free(r);
		}
	}
	ustr_take(u, out.s, out.n);
}

/* RFC 8265 4.2.1 step 2: non-ASCII spaces become U+0020. */
static void map_spaces(struct ustr *u)
{
	for (size_t i = 0; i < u->n; i++) {
		ucs4_t c = u->s[i];
		if (c >= 0x80 &&
				uc_is_general_category_withtable(c, UC_CATEGORY_MASK_Zs)) {
			u->s[i] = 0x20;
		}
	}
}

static void map_nfc(struct ustr *u)
{
	size_t len = 0;
	ucs4_t *r = unistring_ok(u32_normalize(UNINORM_NFC, u->s, u->n,
		NULL, &len));
	ustr_take(u, r, len);
}

/* HasCompat (RFC 8264 9.17): toNFKC(cp) != cp. */
static bool has_compat(ucs4_t c)
{
	ucs4_t d[UC_DECOMPOSITION_MAX_LENGTH];
	int tag;

	if (uc_decomposition(c, &tag, d) < 0) {
		return false;
	}
	ucs4_t buf[UC_DECOMPOSITION_MAX_LENGTH];
	size_t len = UC_DECOMPOSITION_MAX_LENGTH;
	ucs4_t *r = unistring_ok(u32_normalize(UNINORM_NFKC, &c, 1, buf, &len));
	bool changed = len != 1 || r[0] != c;
	if (r != buf) {
		free(r);
	}
	return changed;
}

/* OldHangulJamo (RFC 8264 9.9): Hangul_Syllable_Type L, V or T. */
static bool is_old_hangul_jamo(ucs4_t c)
{
	return (c >= 0x1100 && c <= 0x11ff) || (c >= 0xa960 && c <= 0xa97f) ||
		(c >= 0xd7b0 && c <= 0xd7ff);
}

static bool find_exception(ucs4_t c, enum precis_prop *prop)
{
	for (size_t i = 0; i < sizeof(exceptions) / sizeof(exceptions[0]); i++) {
		if (c >= exceptions[i].lo && c <= exceptions[i].hi) {
			*prop = exceptions[i].prop;
			return true;
		}
	}
	return false;
}

static bool is_unassigned(ucs4_t c)
{
	return uc_is_general_category_withtable(c, UC_CATEGORY_MASK_Cn) &&
		!uc_is_property_not_a_character(c);
}

/* The derived property algorithm of RFC 8264 section 8, in its order. */
static enum precis_prop derived_property(ucs4_t c, bool freeform)
{
	enum precis_prop prop;

	if (find_exception(c, &prop)) {
		return prop;
	}
	if (c >= 0x21 && c <= 0x7e) {
		return PROP_PVALID;
	}
	if (is_unassigned(c)) {
		return PROP_DISALLOWED;
	}
	if (uc_is_property_join_control(c)) {
		return PROP_CONTEXTJ;
	}
	if (is_old_hangul_jamo(c) ||
			uc_is_property_default_ignorable_code_point(c) ||
			uc_is_property_not_a_character(c) ||
			uc_is_general_category_withtable(c, UC_CATEGORY_MASK_Cc)) {
		return PROP_DISALLOWED;
	}
	if (has_compat(c)) {
		return freeform ? PROP_PVALID : PROP_DISALLOWED;
	}
	if (uc_is_general_category_withtable(c, LETTER_DIGITS)) {
		return PROP_PVALID;
	}
	if (freeform && uc_is_general_category_withtable(c, FREEFORM_ONLY)) {
		return PROP_PVALID;
	}
	return PROP_DISALLOWED;
}

static bool is_script(ucs4_t c, const char *name)
{
	return uc_is_script(c, uc_script_byname(name));
}

static bool is_virama(const struct ustr *u, size_t i)
{
	return i > 0 && uc_combining_class(u->s[i - 1]) == UC_CCC_VR;
}

static bool joins(ucs4_t c, int a, int b)
{
	int t = uc_joining_type(c);
	return t == a || t == b;
}

/* RFC 5892 A.1: (L|D) T* ZWNJ T* (R|D) around position i. */
static bool zwnj_joins(const struct ustr *u, size_t i)
{
	size_t b = i;
	while (b > 0 && uc_joining_type(u->s[b - 1]) == UC_JOINING_TYPE_T) {
		b--;
	}
	if (b == 0 || !joins(u->s[b - 1], UC_JOINING_TYPE_L, UC_JOINING_TYPE_D)) {
		return false;
	}
	size_t a = i + 1;
	while (a < u->n && uc_joining_type(u->s[a]) == UC_JOINING_TYPE_T) {
		a++;
	}
	return a < u->n && joins(u->s[a], UC_JOINING_TYPE_R, UC_JOINING_TYPE_D);
}

static bool has_in_range(const struct ustr *u, ucs4_t lo, ucs4_t hi)
{
	for (size_t i = 0; i < u->n; i++) {
		if (u->s[i] >= lo && u->s[i] <= hi) {
			return true;
		}
	}
	return false;
}

static bool has_kana_or_han(const struct ustr *u)
{
	for (size_t i = 0; i < u->n; i++) {
		ucs4_t c = u->s[i];
		if (is_script(c, "Hiragana") || is_script(c, "Katakana") ||
				is_script(c, "Han")) {
			return true;
		}
	}
	return false;
}

/* The contextual rules of RFC 5892 appendix A for the code point at i. */
static bool context_ok(const struct ustr *u, size_t i)
{
	ucs4_t c = u->s[i];
	bool has_before = i > 0;
	bool has_after = i + 1 < u->n;

	switch (c) {
	case 0x200c:
		return is_virama(u, i) || zwnj_joins(u, i);
	case 0x200d:
		return is_virama(u, i);
	case 0x00b7:
		return has_before && has_after && u->s[i - 1] == 'l' &&
			u->s[i + 1] == 'l';
	case 0x0375:
		return has_after && is_script(u->s[i + 1], "Greek");
	case 0x05f3:
	case 0x05f4:
		return has_before && is_script(u->s[i - 1], "Hebrew");
	case 0x30fb:
		return has_kana_or_han(u);
	}
	if (c >= 0x0660 && c <= 0x0669) {
		return !has_in_range(u, 0x06f0, 0x06f9);
	}
	if (c >= 0x06f0 && c <= 0x06f9) {
		return !has_in_range(u, 0x0660, 0x0669);
	}
	return false;
}

/* Every code point is PVALID, or CONTEXTJ/CONTEXTO with its rule met. */
static bool class_ok(const struct ustr *u, bool freeform)
{
	for (size_t i = 0; i < u->n; i++) {
		switch (derived_property(u->s[i], freeform)) {
		case PROP_PVALID:
			break;
		case PROP_CONTEXTJ:
		case PROP_CONTEXTO:
			if (!context_ok(u, i)) {
				return false;
			}
			break;
		case PROP_DISALLOWED:
			return false;
		}
	}
	return true;
}

static bool bidi_in(int cls, const int *set, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (set[i] == cls) {
			return true;
		}
	}
	return false;
}

/* RFC 5893 rules 2-4 for a string whose first code point is R or AL. */
static bool bidi_rtl_ok(const struct ustr *u)
{
	static const int allowed[] = { UC_BIDI_R, UC_BIDI_AL, UC_BIDI_AN,
		UC_BIDI_EN, UC_BIDI_ES, UC_BIDI_CS, UC_BIDI_ET, UC_BIDI_ON,
		UC_BIDI_BN, UC_BIDI_NSM };
	static const int ends[] = { UC_BIDI_R, UC_BIDI_AL, UC_BIDI_EN,
		UC_BIDI_AN };
	bool en = false;
	bool an = false;
	size_t last = u->n;

	for (size_t i = 0; i < u->n; i++) {
		int cls = uc_bidi_class(u->s[i]);
		if (!bidi_in(cls, allowed, sizeof(allowed) / sizeof(allowed[0]))) {
			return false;
		}
		en = en || cls == UC_BIDI_EN;
		an = an || cls == UC_BIDI_AN;
		if (cls != UC_BIDI_NSM) {
			last = i;
		}
	}
	if (en && an) {
		return false;
	}
	return last < u->n && bidi_in(uc_bidi_class(u->s[last]), ends,
		sizeof(ends) / sizeof(ends[0]));
}

/*
 * The Bidi Rule (RFC 5893 section 2) as PRECIS applies it (RFC 8264
 * 5.2.6): only strings holding a right-to-left code point (R, AL or AN)
 * are checked, the whole localpart being one label. Such a string must
 * start with R or AL, since an LTR label may not hold R, AL or AN.
 */
static bool bidi_ok(const struct ustr *u)
{
	bool rtl = false;

	for (size_t i = 0; i < u->n && !rtl; i++) {
		int cls = uc_bidi_class(u->s[i]);
		rtl = cls == UC_BIDI_R || cls == UC_BIDI_AL || cls == UC_BIDI_AN;
	}
	if (!rtl) {
		return true;
	}
	int first = uc_bidi_class(u->s[0]);
	if (first != UC_BIDI_R && first != UC_BIDI_AL) {
		return false;
	}
	return bidi_rtl_ok(u);
}

/* RFC 7622 3.3.1: " & ' / : < > @ are never allowed in a localpart. */
static bool has_jid_forbidden(const struct ustr *u)
{
	for (size_t i = 0; i < u->n; i++) {
		if (u->s[i] < 0x80 && strchr("\"&'/:<>@", (int)u->s[i]) != NULL) {
			return true;
		}
	}
	return false;
}

static bool finish_part(struct ustr *u, char **out, const char *too_long,
	const char **err)
{
	size_t len;
	char *s = ustr_encode(u, &len);

	if (len > JID_PART_MAX) {
		free(s);
		*err = too_long;
		return false;
	}
	*out = s;
	return true;
}

static const char *local_error(struct ustr *u)
{
	map_width(u);
	map_lower(u);
	map_nfc(u);
	if (has_jid_forbidden(u)) {
		return "localpart contains a character forbidden in JIDs";
	}
	if (!class_ok(u, false)) {
		return "localpart contains a disallowed character";
	}
	if (!bidi_ok(u)) {
		return "localpart violates the bidi rule";
	}
	return NULL;
}

/*
 * Fast paths: nearly every JID on the wire is printable ASCII, for which
 * the PRECIS profiles reduce to a character check (and lower case for the
 * localpart), and a lower-case LDH domain is its own IDNA2008 form. They
 * give exactly what the full preparation gives, or decline (NULL) and
 * leave the input to it; tests/test-jid.c compares the two.
 */
static char *ascii_local(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e || strchr("\"&'/:<>@", s[i]) != NULL) {
			return NULL;
		}
	}
	char *out = xstrndup(s, n);
	for (size_t i = 0; i < n; i++) {
		if (out[i] >= 'A' && out[i] <= 'Z') {
			out[i] = (char)(out[i] - 'A' + 'a');
		}
	}
	return out;
}

static char *ascii_resource(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e) {
			return NULL;
		}
	}
	return xstrndup(s, n);
}

/* Is c one of RFC 7622's forbidden localpart characters "&'/:<>@? */
static bool forbidden_in_local(char c)
{
	switch (c) {
	case '"': case '&': case '\'': case '/': case ':': case '<': case '>':
	case '@':
		return true;
	default:
		return false;
	}
}

/* What the fast paths accept, per byte (one lookup per character: the
 * sender of every message goes through here). */
#define CH_RESOURCE 1	/* printable ASCII or space */
#define CH_LOCAL 2	/* printable ASCII, not forbidden in a localpart */
#define CH_LDH 4	/* a-z, 0-9, '-' */
static unsigned char char_class[256];

static const unsigned char *classes(void)
{
	if (char_class['a'] == 0) {
		for (int c = 0x20; c < 0x7f; c++) {
			unsigned char k = CH_RESOURCE;
			if (c > 0x20 && !forbidden_in_local((char)c)) {
				k |= CH_LOCAL;
			}
			if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
					c == '-') {
				k |= CH_LDH;
			}
			char_class[c] = k;
		}
	}
	return char_class;
}

/* The length of the plain LDH domain s (n bytes) without its trailing
 * dot, or 0 when it is not one: labels of 1-63 of a-z, 0-9 and inner
 * hyphens, no "--" (so no A-label). */
static size_t ascii_domain_len(const char *s, size_t n)
{
	const unsigned char *k = classes();
	if (n > 0 && s[n - 1] == '.') {
		n--;
	}
	size_t label = 0;
	char prev = '.';
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || prev == '-') {
				return 0;
			}
			label = 0;
		} else if ((k[(unsigned char)c] & CH_LDH) == 0 ||
				(c == '-' && (label == 0 || prev == '-')) || ++label > 63) {
			return 0;
		}
		prev = c;
	}
	return label == 0 || prev == '-' ? 0 : n;
}

static char *ascii_domain(const char *s, size_t n)
{
	size_t d = ascii_domain_len(s, n);
	return d > 0 ? xstrndup(s, d) : NULL;
}

/* UsernameCaseMapped (RFC 8265 3.3) plus RFC 7622's forbidden characters. */
static bool prep_local(const char *s, size_t n, char **out, const char **err)
{
	struct ustr u = { 0 };
	bool ok;

	if (n > 0 && n <= JID_PART_MAX && (*out = ascii_local(s, n)) != NULL) {
		return true;
	}
	if (n == 0) {
		*err = "empty localpart";
		return false;
	}
	if (n > JID_RAW_MAX) {
		*err = "localpart too long";
		return false;
	}
	ustr_decode(&u, s, n);
	*err = local_error(&u);
	ok = *err == NULL && finish_part(&u, out, "localpart too long", err);
	free(u.s);
	return ok;
}

/* OpaqueString (RFC 8265 4.2): spaces mapped, NFC, FreeformClass. */
static bool prep_resource(const char *s, size_t n, char **out,
	const char **err)
{
	struct ustr u = { 0 };
	bool ok = false;

	if (n > 0 && n <= JID_PART_MAX && (*out = ascii_resource(s, n)) != NULL) {
		return true;
	}
	if (n == 0) {
		*err = "empty resourcepart";
		return false;
	}
	if (n > JID_RAW_MAX) {
		*err = "resourcepart too long";
		return false;
	}
	ustr_decode(&u, s, n);
	map_spaces(&u);
	map_nfc(&u);
	if (!class_ok(&u, true)) {
		*err = "resourcepart contains a disallowed character";
	} else {
		ok = finish_part(&u, out, "resourcepart too long", err);
	}
	free(u.s);
	return ok;
}

/* "[v6 address]", kept in the canonical text form of RFC 5952. */
static bool prep_ip6(const char *s, size_t n, char **out, const char **err)
{
	char addr[INET6_ADDRSTRLEN];
	unsigned char bin[16];

	*err = "domainpart is not a valid IPv6 literal";
	if (n < 3 || n - 2 >= sizeof(addr) || s[n - 1] != ']') {
		return false;
	}
	memcpy(addr, s + 1, n - 2);
	addr[n - 2] = '\0';
	if (inet_pton(AF_INET6, addr, bin) != 1 ||
			inet_ntop(AF_INET6, bin, addr, sizeof(addr)) == NULL) {
		return false;
	}
	*out = xasprintf("[%s]", addr);
	return true;
}

/*
 * A-label form of a domain, or NULL. libidn2 maps with UTS #46 (case,
 * width, NFC) and checks IDNA2008; its STD3 flag deletes bad ASCII instead
 * of refusing it, so the result is checked here to be NR-LDH labels and
 * A-labels only: letters, digits, '-' and non-empty labels. One trailing
 * dot, the DNS root, is dropped (RFC 7622 3.2).
 */
static char *domain_to_ascii(const char *name)
{
	char *a = NULL;

	if (idn2_lookup_u8((const uint8_t *)name, (uint8_t **)&a,
			IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) {
		return NULL;
	}
	size_t len = strlen(a);
	if (len > 0 && a[len - 1] == '.') {
		a[--len] = '\0';
	}
	bool ok = len > 0 && a[0] != '.' && a[len - 1] != '.' &&
		strstr(a, "..") == NULL &&
		strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789-.") == len;
	if (!ok) {
		idn2_free(a);
		return NULL;
	}
	return a;
}

/* U-label form of a domain whose U-labels map back to the same A-labels. */
static char *domain_to_unicode(const char *name)
{
	char *a = domain_to_ascii(name);
	char *u = NULL;
	char *again = NULL;
	char *res = NULL;

	if (a == NULL || idn2_to_unicode_8z8z(a, &u, 0) != IDN2_OK) {
		goto out;
	}
	again = domain_to_ascii(u);
	if (again != NULL && strcmp(a, again) == 0) {
		res = xstrdup(u);
	}
out:
	idn2_free(again);
	idn2_free(u);
	idn2_free(a);
	return res;
}

/*
 * IDNA2008 domainpart (RFC 7622 3.2). It is kept in U-label form, lower
 * case and NFC: RFC 7622 3.2.2 says A-labels are converted to U-labels
 * while preparing, so "xn--bcher-kva.example" and "BÜCHER.example" both
 * become "bücher.example", jid_to_string() shows what people typed, and a
 * byte comparison is a U-label comparison. Whoever needs DNS or the stream
 * header's A-label form converts with idn2_lookup_u8() again.
 */
static bool prep_domain(const char *s, size_t n, char **out, const char **err)
{
	if (n == 0 || (n == 1 && s[0] == '.')) {
		*err = "empty domainpart";
		return false;
	}
	if (n > JID_RAW_MAX) {
		*err = "domainpart too long";
		return false;
	}
	if (memchr(s, '@', n) != NULL) {
		*err = "domainpart contains '@'";
		return false;
	}
	if (s[0] == '[') {
		return prep_ip6(s, n, out, err);
	}
	if (n <= 253 && (*out = ascii_domain(s, n)) != NULL) {
		return true;
	}
	char *name = xstrndup(s, n);
	char *u = domain_to_unicode(name);
	free(name);
	if (u == NULL) {
		*err = "domainpart is not a valid IDNA2008 name";
		return false;
	}
	if (strlen(u) > JID_PART_MAX) {
		free(u);
		*err = "domainpart too long";
		return false;
	}
	*out = u;
	return true;
}

static bool parse_parts(struct jid *j, const char *s, const char **err)
{
	size_t len = strlen(s);
	const char *slash = memchr(s, '/', len);
	size_t bare = slash != NULL ? (size_t)(slash - s) : len;
	const char *at = memchr(s, '@', bare);
	const char *dom = at != NULL ? at + 1 : s;

	if (u8_check((const uint8_t *)s, len) != NULL) {
		*err = "invalid UTF-8";
		return false;
	}
	if (at != NULL && !prep_local(s, at - s, &j->local, err)) {
		return false;
	}
	if (!prep_domain(dom, s + bare - dom, &j->domain, err)) {
		return false;
	}
	return slash == NULL ||
		prep_resource(slash + 1, len - bare - 1, &j->resource, err);
}

/* Are the n bytes at s all of class k, and 1 to JID_PART_MAX of them? */
static bool all_of(const char *s, size_t n, unsigned char k)
{
	const unsigned char *cls = classes();
	for (size_t i = 0; i < n; i++) {
		if ((cls[(unsigned char)s[i]] & k) == 0) {
			return false;
		}
	}
	return n > 0 && n <= JID_PART_MAX;
}

/* The bare JID of a plain ASCII s written into out, as the fast paths of
 * jid_parse prepare it; false when s needs more (or out is too small). */
static bool ascii_bare(const char *s, char *out, size_t cap)
{
	size_t len = strlen(s);
	const char *slash = memchr(s, '/', len);
	size_t bare = slash != NULL ? (size_t)(slash - s) : len;
	const char *at = memchr(s, '@', bare);
	const char *dom = at != NULL ? at + 1 : s;
	size_t l = at != NULL ? (size_t)(at - s) : 0;
	size_t dn = (size_t)(s + bare - dom);
	size_t d = dn <= 253 ? ascii_domain_len(dom, dn) : 0;
	if (d == 0 || (at != NULL && !all_of(s, l, CH_LOCAL)) || l + d + 2 > cap ||
			(slash != NULL && !all_of(slash + 1, len - bare - 1, CH_RESOURCE))) {
		return false;
	}
	for (size_t i = 0; i < l; i++) {
		out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
	}
	size_t o = l;
	if (at != NULL) {
		out[o++] = '@';
	}
	memcpy(out + o, dom, d);
	out[o + d] = '\0';
	return true;
}

/* What jid_prep(s, true, NULL) gives, in out when it fits and s is plain
 * ASCII (no allocation: this runs for the sender of every message). */
const char *jid_prep_bare_into(const char *s, char *out, size_t cap,
	char **heap)
{
	*heap = NULL;
	if (s == NULL) {
		return NULL;
	}
	if (ascii_bare(s, out, cap)) {
		return out;
	}
	*heap = jid_prep(s, true, NULL);
	return *heap;
}

/* Splits s at the first '/' and the first '@' before it and prepares each part. */
bool jid_parse(struct jid *out, const char *s, const char **err)
{
	const char *msg = NULL;

	out->local = out->domain = out->resource = NULL;
	if (parse_parts(out, s, &msg)) {
		return true;
	}
	jid_finish(out);
	if (err != NULL) {
		*err = msg;
	}
	return false;
}

/* Frees the parts and leaves j empty, ready to be parsed into again. */
void jid_finish(struct jid *j)
{
	if (j == NULL) {
		return;
	}
	free(j->local);
	free(j->domain);
	free(j->resource);
	j->local = j->domain = j->resource = NULL;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Deep copy; dst's previous contents are not freed, so finish it first. */
void jid_copy(struct jid *dst, const struct jid *src)
{
	dst->local = dup_or_null(src->local);
	dst->domain = dup_or_null(src->domain);
	dst->resource = dup_or_null(src->resource);
}

/* Joins local@domain/resource, the parts present only (no printf: this
 * runs for several JIDs of every stanza). */
static char *join(const struct jid *j, bool resource)
{
	size_t l = j->local != NULL ? strlen(j->local) : 0;
	size_t d = strlen(j->domain);
	size_t r = resource && j->resource != NULL ? strlen(j->resource) : 0;
	char *out = xmalloc(l + d + r + 3);
	char *p = out;
	if (j->local != NULL) {
		memcpy(p, j->local, l);
		p += l;
		*p++ = '@';
	}
	memcpy(p, j->domain, d);
	p += d;
	if (resource && j->resource != NULL) {
		*p++ = '/';
		memcpy(p, j->resource, r);
		p += r;
	}
	*p = '\0';
	return out;
}

/* The full canonical form, parts present only; the caller frees it. */
char *jid_to_string(const struct jid *j)
{
	return join(j, true);
}

/* The canonical form without resourcepart; the caller frees it. */
char *jid_bare_string(const struct jid *j)
{
	return join(j, false);
}

static bool part_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL) {
		return a == b;
	}
	return strcmp(a, b) == 0;
}

/* Prepared parts are canonical, so bytes compare as RFC 7622 compares JIDs. */
bool jid_bare_equal(const struct jid *a, const struct jid *b)
{
	return part_equal(a->local, b->local) && part_equal(a->domain, b->domain);
}

/* Bare equality plus an equal (or equally absent) resourcepart. */
bool jid_equal(const struct jid *a, const struct jid *b)
{
	return jid_bare_equal(a, b) && part_equal(a->resource, b->resource);
}

/* Parses and reprints s in canonical form, or returns NULL with *err set. */
char *jid_prep(const char *s, bool bare, const char **err)
{
	struct jid j;

	if (!jid_parse(&j, s, err)) {
		return NULL;
	}
	char *out = bare ? jid_bare_string(&j) : jid_to_string(&j);
	jid_finish(&j);
	return out;
}
