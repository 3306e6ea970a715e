/*
 * Compact JSON, the bytes json_dump_callback(JSON_COMPACT) writes (tests
 * in test-ipc.c compare them), at a fraction of the cost: every event
 * line and every logged message passes through here, and jansson's
 * dumper decodes each character of each string on the way. Runs of
 * characters that need no escape are copied whole; invalid UTF-8 fails
 * the encoding as it does in jansson; reals are left to jansson.
 */
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "daemon/jsonenc.h"

#define MAX_DEPTH 256

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
size_t jsonenc_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		return 1;
	}
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf) {
			return 0;
		}
	}
	return n;
}

static int append(const char *data, size_t size, void *ud)
{
	buf_append(ud, data, size);
	return 0;
}

/* Writes the escape of an ASCII character at p; returns its length. */
static size_t put_escape(char *p, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *short_form = NULL;
	switch (c) {
	case '\\': short_form = "\\\\"; break;
	case '"': short_form = "\\\""; break;
	case '\b': short_form = "\\b"; break;
	case '\f': short_form = "\\f"; break;
	case '\n': short_form = "\\n"; break;
	case '\r': short_form = "\\r"; break;
	case '\t': short_form = "\\t"; break;
	default: break;
	}
	if (short_form != NULL) {
		memcpy(p, short_form, 2);
		return 2;
	}
	memcpy(p, "\\u00", 4);
	p[4] = hex[c >> 4];
	p[5] = hex[c & 15];
	return 6;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Do the 8 bytes at p need no escape (printable ASCII, no '"' or '\\')?
 * Word at a time: a byte below 0x20, a high bit, or a zero byte after
 * XOR with '"' or '\\' sets a high bit in the result. */
static bool plain8(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	uint64_t quote = v ^ (ONES * '"');
	uint64_t bslash = v ^ (ONES * '\\');
	uint64_t bad = ((v - ONES * 0x20) & ~v) | v |
		((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash);
	return (bad & HIGHS) == 0;
}

#if defined(__SSE2__)
/* The 16 bytes at p, as plain8 asks of eight: one signed compare takes
 * both controls and non-ASCII (bytes from 0x80 are negative). */
static bool plain16(const unsigned char *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
		_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
		_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
	return _mm_movemask_epi8(bad) == 0;
}
#else
static bool plain16(const unsigned char *p)
{
	return plain8(p) && plain8(p + 8);
}
#endif

/* Writes the (escaped) characters starting in [p, stop) at *w; returns
 * where it stopped, NULL on invalid UTF-8. */
static const unsigned char *put_chars(char **w, const unsigned char *p,
	const unsigned char *stop, const unsigned char *end)
{
	while (p < stop) {
		if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
			*(*w)++ = (char)*p++;
			continue;
		}
		if (*p < 0x80) {
			*w += put_escape(*w, *p++);
			continue;
		}
		size_t n = jsonenc_utf8_len(p);
		if (n == 0 || n > (size_t)(end - p)) {
			return NULL;
		}
		memcpy(*w, p, n);
		*w += n;
		p += n;
	}
	return p;
}

/* Writes s quoted and escaped at w, where the caller made room for the
 * worst case (every byte a \u00XX: 6 * len + 2); returns the end, or
 * NULL on invalid UTF-8. No call per run or per escape, eight plain
 * bytes copied at once. */
static char *write_string(char *w, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;
	*w++ = '"';
	while (end - p >= 16 && plain16(p)) {
		memcpy(w, p, 16);
		w += 16;
		p += 16;
	}
	while (p < end) {
		if (end - p >= 8 && plain8(p)) {
			memcpy(w, p, 8);
			w += 8;
			p += 8;
			continue;
		}
		if (end - p < 8 && len >= 8 && plain8(end - 8)) {
			/* A plain tail: the bytes before it in those last eight
			 * are plain too, so they are already out, unchanged, just
			 * before w; copying the eight again ends the string. */
			size_t r = (size_t)(end - p);
			memcpy(w - (8 - r), end - 8, 8);
			w += r;
			break;
		}
		p = put_chars(&w, p, end - p > 8 ? p + 8 : end, end);
		if (p == NULL) {
			return NULL;
		}
	}
	*w++ = '"';
	return w;
}

/* Ends out at w, or leaves it as it was when w is NULL. */
static bool end_at(struct buf *out, char *w)
{
	if (w == NULL) {
		out->data[out->len] = '\0';
		return false;
	}
	*w = '\0';
	out->len = (size_t)(w - out->data);
	return true;
}

static bool put_string(struct buf *out, const char *s, size_t len)
{
	buf_reserve(out, 6 * len + 2);
	return end_at(out, write_string(out->data + out->len, s, len));
}

static bool put_value(struct buf *out, const json_t *v, int depth);

/* Decimal, as "%lld" writes it (every event has a seq). */
static void put_integer(struct buf *out, json_int_t v)
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
		: (unsigned long long)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0) {
		*--p = '-';
	}
	buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

static bool put_object(struct buf *out, const json_t *obj, int depth)
{
	bool first = true;
	buf_putc(out, '{');
	for (void *it = json_object_iter((json_t *)obj); it != NULL;
			it = json_object_iter_next((json_t *)obj, it)) {
		if (!first) {
			buf_putc(out, ',');
		}
		first = false;
		if (!put_string(out, json_object_iter_key(it),
				json_object_iter_key_len(it))) {
			return false;
		}
		buf_putc(out, ':');
		if (!put_value(out, json_object_iter_value(it), depth + 1)) {
			return false;
		}
	}
	buf_putc(out, '}');
	return true;
}

static bool put_array(struct buf *out, const json_t *a, int depth)
{
	buf_putc(out, '[');
	for (size_t i = 0; i < json_array_size(a); i++) {
		if (i > 0) {
			buf_putc(out, ',');
		}
		if (!put_value(out, json_array_get(a, i), depth + 1)) {
			return false;
		}
	}
	buf_putc(out, ']');
	return true;
}

static bool put_value(struct buf *out, const json_t *v, int depth)
{
	if (depth > MAX_DEPTH || v == NULL) {
		return false;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return put_object(out, v, depth);
	case JSON_ARRAY:
		return put_array(out, v, depth);
	case JSON_STRING:
		return put_string(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		put_integer(out, json_integer_value(v));
		return true;
	case JSON_TRUE:
		buf_puts(out, "true");
		return true;
	case JSON_FALSE:
		buf_puts(out, "false");
		return true;
	case JSON_NULL:
		buf_puts(out, "null");
		return true;
	default:
		return json_dump_callback(v, append, out,
			JSON_COMPACT | JSON_ENCODE_ANY) == 0;
	}
}


/* Appends v as compact JSON (no newline); false (out unchanged) if it
 * cannot be encoded, as jansson would refuse it, or is not an object or
 * an array. */
bool jsonenc_append(struct buf *out, const json_t *v)
{
	size_t mark = out->len;
	if (!json_is_object(v) && !json_is_array(v)) {
		return false;
	}
	if (!put_value(out, v, 0)) {
		out->len = mark;
		if (out->data != NULL) {
			out->data[mark] = '\0';
		}
		return false;
	}
	return true;
}

/* Appends s (len bytes) as a JSON string, quoted and escaped as
 * jansson writes it; false, and out unchanged, on invalid UTF-8. */
bool jsonenc_string(struct buf *out, const char *s, size_t len)
{
	size_t mark = out->len;
	if (!put_string(out, s, len)) {
		out->len = mark;
		return false;
	}
	return true;
}

/* Appends ,"key":"s" with one reservation (a message event's members:
 * half their cost was the calls around the string). */
bool jsonenc_member_string(struct buf *out, const char *key, size_t klen,
	const char *s, size_t len)
{
	buf_reserve(out, klen + 4 + 6 * len + 2);
	char *w = out->data + out->len;
	w[0] = ',';
	w[1] = '"';
	memcpy(w + 2, key, klen);
	w[klen + 2] = '"';
	w[klen + 3] = ':';
	return end_at(out, write_string(w + klen + 4, s, len));
}

/* Appends v in decimal. */
void jsonenc_integer(struct buf *out, json_int_t v)
{
	put_integer(out, v);
}

/* Appends any value v as compact JSON; false (out unchanged) if jansson
 * would refuse it. */
bool jsonenc_value(struct buf *out, const json_t *v)
{
	size_t mark = out->len;
	if (!put_value(out, v, 0)) {
		out->len = mark;
		if (out->data != NULL) {
			out->data[mark] = '\0';
		}
		return false;
	}
	return true;
}

/* Appends {"event":name,"seq":seq, and ev's members}: what events.c
 * frames and sinks encode, without building the framed object. */
bool jsonenc_event(struct buf *out, const char *name, uint64_t seq,
	const json_t *ev)
{
	size_t mark = out->len;
	buf_puts(out, "{\"event\":");
	bool ok = put_string(out, name, strlen(name));
	buf_puts(out, ",\"seq\":");
	put_integer(out, (json_int_t)seq);
	size_t before = out->len;
	ok = ok && json_is_object(ev) && put_object(out, ev, 0);
	if (ok && out->len - before > 2) {
		out->data[before] = ',';	/* ev's '{' continues ours */
	} else if (ok) {
		out->len = before;
		buf_putc(out, '}');
	}
	if (!ok) {
		out->len = mark;
		if (out->data != NULL) {
			out->data[mark] = '\0';
		}
	}
	return ok;
}
