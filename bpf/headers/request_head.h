/* Reading and writing the head of an HTTP/1.x request in an event's
 * captured bytes, for context propagation: where the request line ends,
 * whether a traceparent is there, and the line to insert. */
#ifndef TRACER_REQUEST_HEAD_H
#define TRACER_REQUEST_HEAD_H

#define DATA_MASK (CAPTURE_MAX * 2 - 1)

/* head_scan walks the head of an HTTP/1.x request in e->data, a byte per
 * bpf_loop step, so the verifier checks one step instead of 4096. */
struct head_scan {
	struct event *e;
	__u32 n;           /* bytes to look at */
	__u32 line;        /* where the current line starts */
	__u32 headers;     /* where the first header starts; 0: no request line */
	__u32 traceparent; /* where the traceparent line starts; 0: none */
	__u64 line_hash;   /* FNV-1a of the request line after the method */
	bool in_target;    /* the first line's first space was seen */
	bool ended;        /* the empty line that ends the head was seen */
	bool bad;          /* the first line is not a request line */
	bool rest;         /* the bytes go on a head begun in an earlier read: no request line */
	bool tp;           /* a traceparent line was seen (it may start at 0 in a rest) */
};

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static __always_inline __u8 at(struct event *e, __u32 i)
{
	return e->data[i & DATA_MASK];
}

/* request_line ends at the '\n' at i: "<TOKEN> <target> HTTP/1.x\r\n". The
 * first byte may be missing (Go servers may read it alone). */
static __always_inline bool request_line(struct event *e, __u32 i)
{
	if (i < 10 || at(e, i - 1) != '\r')
		return false;
	__u8 c = at(e, 0);
	if (c < 'A' || c > 'Z')
		return false;
	__u32 v = i - 10;
	if (at(e, v) != ' ' || at(e, v + 1) != 'H' || at(e, v + 2) != 'T' || at(e, v + 3) != 'T' ||
	    at(e, v + 4) != 'P' || at(e, v + 5) != '/' || at(e, v + 6) != '1' || at(e, v + 7) != '.')
		return false;
	c = at(e, i - 2);
	return c == '0' || c == '1';
}

static __always_inline bool traceparent_line(struct event *e, __u32 start)
{
	/* "traceparent:" in any case: | 0x20 lowers letters and keeps ':' */
	__u64 want = 0x7261706563617274ULL; /* "tracepar", little-endian */
	__u32 rest = 0x3a746e65;            /* "ent:" */
	__u64 got = 0;
	__u32 got_rest = 0;
	for (int k = 0; k < 8; k++)
		got |= (__u64)(at(e, start + k) | 0x20) << (8 * k);
	for (int k = 0; k < 4; k++)
		got_rest |= (__u32)(at(e, start + 8 + k) | 0x20) << (8 * k);
	return got == want && got_rest == rest;
}

/* scan_byte looks at byte i; it returns 1 when the scan is over. */
static __always_inline long scan_byte(struct head_scan *s, __u32 i)
{
	if (i >= s->n)
		return 1;
	struct event *e = s->e;
	__u8 c = at(e, i);
	if (s->headers == 0) { /* still in the request line */
		if (s->in_target)
			s->line_hash = (s->line_hash ^ c) * FNV_PRIME;
		else if (c == ' ')
			s->in_target = true;
	}
	if (c != '\n')
		return 0;
	__u32 start = s->line;
	s->line = i + 1;
	if (start == 0 && !s->rest) {
		if (!request_line(e, i)) {
			s->bad = true;
			return 1;
		}
		s->headers = i + 1;
		return 0;
	}
	if (i - start <= 1) {
		s->ended = true;
		return 1;
	}
	if (i - start > 12 && traceparent_line(e, start)) {
		s->traceparent = start;
		s->tp = true;
		return 1;
	}
	return 0;
}

/* A byte per bpf_loop step: more per step multiplies the states the
 * verifier must walk past its limit. */
static long scan_step(__u64 index, void *arg)
{
	return scan_byte(arg, index);
}

static __always_inline bool response_head(struct event *e)
{
	return e->cap_len >= 5 && at(e, 0) == 'H' && at(e, 1) == 'T' && at(e, 2) == 'T' && at(e, 3) == 'P' && at(e, 4) == '/';
}

/* may_be_request: e->data begins with a capital and is not a response. A
 * request line without its first byte still does (Go servers may read it
 * alone). */
static __always_inline bool may_be_request(struct event *e)
{
	__u8 c = at(e, 0);
	return e->cap_len >= 2 && c >= 'A' && c <= 'Z' && !response_head(e);
}

/* scan_head reports whether e->data begins with a request line; what
 * cannot be one is turned down before the scan. */
static __always_inline bool scan_head(struct event *e, struct head_scan *s)
{
	if (!may_be_request(e))
		return false;
	s->e = e;
	s->line_hash = FNV_OFFSET;
	s->n = e->cap_len < CAPTURE_MAX ? e->cap_len : CAPTURE_MAX;
	bpf_loop(CAPTURE_MAX, scan_step, s, 0);
	launder(&s->n, sizeof(*s) - __builtin_offsetof(struct head_scan, n));
	return !s->bad && s->headers != 0;
}

/* scan_rest scans the header lines of a head whose request line an
 * earlier read took, up to its end or its traceparent line. */
static __always_inline void scan_rest(struct event *e, struct head_scan *s)
{
	s->e = e;
	s->rest = true;
	s->n = e->cap_len < CAPTURE_MAX ? e->cap_len : CAPTURE_MAX;
	bpf_loop(CAPTURE_MAX, scan_step, s, 0);
	launder(&s->n, sizeof(*s) - __builtin_offsetof(struct head_scan, n));
}

static __always_inline int hex_value(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static __always_inline bool decode_hex(struct event *e, __u32 from, __u8 *dst, int n)
{
	for (int k = 0; k < n; k++) {
		int hi = hex_value(at(e, from + 2 * k)), lo = hex_value(at(e, from + 2 * k + 1));
		if (hi < 0 || lo < 0)
			return false;
		dst[k] = hi << 4 | lo;
	}
	return true;
}

static __always_inline bool all_zero(__u8 *b, int n)
{
	__u8 any = 0;
	for (int k = 0; k < n; k++)
		any |= b[k];
	return any == 0;
}

/* parse_traceparent reads "traceparent: 00-<trace>-<span>-<flags>" from the
 * line at start into c: trace id, the caller's span as parent, flags. */
static __always_inline bool parse_traceparent(struct event *e, __u32 start, struct trace_ctx *c)
{
	__u32 v = start + 12;
	for (int k = 0; k < 4 && at(e, v) == ' '; k++)
		v++;
	if (at(e, v) != '0' || at(e, v + 1) != '0' || at(e, v + 2) != '-' ||
	    at(e, v + 35) != '-' || at(e, v + 52) != '-' || at(e, v + 55) != '\r')
		return false;
	__u8 flags[1];
	if (!decode_hex(e, v + 3, c->trace_id, 16) || !decode_hex(e, v + 36, c->parent_id, 8) ||
	    !decode_hex(e, v + 53, flags, 1))
		return false;
	c->flags = flags[0];
	return !all_zero(c->trace_id, 16) && !all_zero(c->parent_id, 8);
}

static __always_inline void random_id(__u8 *b, int n)
{
	for (int k = 0; k < n; k += 4) {
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(&b[k], &r, 4);
	}
	b[0] |= 1; /* an all-zero id is invalid */
}

static __always_inline char hex_digit(__u8 n)
{
	return n < 10 ? '0' + n : 'a' + n - 10;
}

static __always_inline void put_hex(char *dst, __u8 *src, int n)
{
	for (int k = 0; k < n; k++) {
		dst[2 * k] = hex_digit(src[k] >> 4);
		dst[2 * k + 1] = hex_digit(src[k] & 0xf);
	}
}

/* write_line formats the header line the plan will insert. */
static __always_inline void write_line(struct plan *p)
{
	__builtin_memcpy(p->line, "traceparent: 00-", 16);
	put_hex(&p->line[16], p->ctx.trace_id, 16);
	p->line[48] = '-';
	put_hex(&p->line[49], p->ctx.span_id, 8);
	p->line[65] = '-';
	put_hex(&p->line[66], &p->ctx.flags, 1);
	p->line[68] = '\r';
	p->line[69] = '\n';
}

#endif
