/* HTTP/2 frames past the captured head. HPACK makes every header block
 * depend on the ones before it, so the parser needs every HEADERS and
 * CONTINUATION frame whole, wherever it sits in a read: behind 60 KiB of
 * DATA frames as often as not. For a connection whose bytes are HTTP/2
 * (it began with the client's preface), the kernel walks the frame headers
 * of each syscall from where the connection's previous syscall in the same
 * direction left off, and copies, past the head, every frame header and
 * the whole payload of the frames the parser reads (HEADERS, PUSH_PROMISE,
 * CONTINUATION, SETTINGS, RST_STREAM, GOAWAY), each run with its offset:
 * the event's extents. DATA payloads are only counted. */
#ifndef TRACER_FRAMES_H
#define TRACER_FRAMES_H

#define EXT_MAX (DATA_USED - CAPTURE_MAX) /* bytes of extents an event carries */
#define FRAMES_MAX 1024    /* frames (and chunks of copied ones, and iovec entries) walked in one syscall */
#define FRAME_LEN_MAX (1 << 24)
#define PREFACE_LEN 24
#define FRAME_HEADER 9

enum frame_type {
	FRAME_DATA = 0,
	FRAME_HEADERS = 1,
	FRAME_RST_STREAM = 3,
	FRAME_SETTINGS = 4,
	FRAME_PUSH_PROMISE = 5,
	FRAME_GOAWAY = 7,
	FRAME_CONTINUATION = 9,
};

#define FLAG_PADDED 0x8

/* Where a direction of a connection stands in its frames between two
 * syscalls. */
struct frame_dir {
	__u32 left;   /* bytes of the current frame still to come */
	__u8 copy;    /* the current frame's payload is copied */
	__u8 held;    /* bytes of a frame header cut by the syscall's end, in hdr */
	__u8 pad[2];
	__u8 hdr[48]; /* FRAME_HEADER used; sized for the verifier's masks */
};

struct frame_walk {
	struct frame_dir dir[2]; /* [0] what the process read, [1] what it wrote */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct sock address */
	__type(value, struct frame_walk);
} frame_socks SEC(".maps");

/* How many connections are walked: while zero, events skip the lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} frame_count SEC(".maps");

/* walk is one syscall's walk over its frames. The syscall's bytes are
 * runs (its buffer, or its iovec entries one after the other): base + o
 * is the byte at offset o of the syscall's bytes while o < end, the end of
 * the current run; next is the iovec entry after it. */
struct walk {
	struct event *e;
	struct frame_dir *d;
	__u64 base;
	__u32 end;
	__u32 next;
	__u64 iov;     /* the syscall's iovec array (entries read as the walk goes) */
	__u32 count;   /* its entries; 0 for a buffer */
	__u32 len;     /* bytes the syscall moved */
	__u32 o;       /* offset of what comes next: a frame header, or the rest of a frame */
	__u32 head;    /* bytes captured from offset 0 already */
	__u16 used;    /* bytes of extents written */
	bool short_;   /* extents were left out: over the budget */
};

/* copy_out adds bytes [off, off+n) of the syscall, n at most READ_CHUNK,
 * as an extent: a 6-byte record (offset, length) and the bytes. What the
 * head holds is not copied again. */
static __always_inline void copy_out(struct walk *w, __u32 off, __u32 n)
{
	if (off + n <= w->head || n == 0)
		return;
	if (off < w->head) {
		n -= w->head - off;
		off = w->head;
	}
	if (w->used + 6 + n > EXT_MAX) {
		w->short_ = true;
		return;
	}
	struct event *e = w->e;
	__u64 at = e->cap_len + w->used, size = n;
	bound(at, 0x3fff);
	bound(size, 0xfff);
	__builtin_memcpy(&e->data[at], &off, 4);
	__u16 n16 = n;
	__builtin_memcpy(&e->data[at + 4], &n16, 2);
	if (bpf_probe_read_user(&e->data[at + 6], size, (void *)(w->base + off)) != 0) {
		w->short_ = true;
		return;
	}
	w->used += 6 + n;
}

static __always_inline bool copied_frame(__u8 type)
{
	switch (type) {
	case FRAME_HEADERS:
	case FRAME_PUSH_PROMISE:
	case FRAME_CONTINUATION:
	case FRAME_SETTINGS:
	case FRAME_RST_STREAM:
	case FRAME_GOAWAY:
		return true;
	}
	return false;
}

/* next_run moves the walk on to the syscall's next iovec entry; false
 * when there is none (or none that was read). */
static __always_inline bool next_run(struct walk *w)
{
	struct iovec v;
	if (w->next >= w->count ||
	    bpf_probe_read_user(&v, sizeof(v), (void *)(w->iov + (__u64)w->next * sizeof(v))) != 0)
		return false;
	__u32 start = w->end;
	__u64 l = v.iov_len;
	w->base = (__u64)v.iov_base - start;
	w->end = l < w->len - start ? start + l : w->len;
	w->next++;
	return true;
}

/* frame_step takes one frame, or the rest of one, within one run; it
 * returns 1 when the syscall's bytes are all walked, or when the walk
 * lost its way (the walk's direction is then forgotten: bpf_loop's
 * caller sees o short). A frame header cut by the end of a run is held
 * as one cut by the end of a syscall. */
static long frame_step(__u64 index, void *arg)
{
	struct walk *w = arg;
	struct frame_dir *d = w->d;
	if (w->o >= w->len)
		return 1;
	if (w->o >= w->end)
		return next_run(w) ? 0 : 1;
	__u32 len = w->end;
	if (d->left) { /* the rest of a frame: copied a chunk an iteration, or skipped */
		__u32 n = d->left < len - w->o ? d->left : len - w->o;
		if (d->copy) {
			n = n < READ_CHUNK ? n : READ_CHUNK;
			copy_out(w, w->o, n);
		}
		w->o += n;
		d->left -= n;
		return 0;
	}
	/* A frame header, perhaps begun at the end of the previous syscall:
	 * its bytes gather in d->hdr. */
	__u32 held = d->held < FRAME_HEADER ? d->held : 0;
	__u32 need = FRAME_HEADER - held, avail = len - w->o;
	__u32 take = avail < need ? avail : need;
	__u64 at_hdr = held, size = take;
	bound(at_hdr, 0xf);
	bound(size, 0xf);
	if (bpf_probe_read_user(&d->hdr[at_hdr], size, (void *)(w->base + w->o)) != 0)
		return 1;
	copy_out(w, w->o, take);
	w->o += take;
	if (take < need) { /* cut again, by the run's end */
		d->held = held + take;
		return 0;
	}
	d->held = 0;
	__u8 *h = d->hdr;
	__u32 flen = (__u32)h[0] << 16 | (__u32)h[1] << 8 | h[2];
	if (flen > FRAME_LEN_MAX) {
		w->o = 0; /* not HTTP/2 any more: lost */
		return 1;
	}
	d->left = flen;
	d->copy = copied_frame(h[3]);
	if (!d->copy && h[3] == FRAME_DATA && (h[4] & FLAG_PADDED) && flen > 0 && w->o < len) {
		copy_out(w, w->o, 1); /* the pad length: body sizes */
	}
	return 0;
}

static __always_inline bool is_preface(struct event *e)
{
	if (e->cap_len < PREFACE_LEN)
		return false;
	__u64 a, b, c;
	__builtin_memcpy(&a, &e->data[0], 8);
	__builtin_memcpy(&b, &e->data[8], 8);
	__builtin_memcpy(&c, &e->data[16], 8);
	/* "PRI * HT" "TP/2.0\r\n" "\r\nSM\r\n\r\n", little-endian */
	return a == 0x5448202a20495250ULL && b == 0x0a0d302e322f5054ULL && c == 0x0a0d0a0d4d530a0dULL;
}

static __always_inline void frames_counted(__s64 delta)
{
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(&frame_count, &zero);
	if (n)
		__sync_fetch_and_add(n, delta);
}

/* walked_state finds the walk of e's connection, or starts one when e
 * begins with the client preface; *from is where its frames begin. */
static __always_inline struct frame_walk *walked_state(struct event *e, __u32 *from)
{
	*from = 0;
	if (e->len >= PREFACE_LEN && is_preface(e)) {
		struct frame_walk fresh = {};
		if (bpf_map_update_elem(&frame_socks, &e->sock, &fresh, BPF_NOEXIST) == 0)
			frames_counted(1);
		*from = PREFACE_LEN;
		return bpf_map_lookup_elem(&frame_socks, &e->sock);
	}
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(&frame_count, &zero);
	if (!n || *n <= 0)
		return 0;
	return bpf_map_lookup_elem(&frame_socks, &e->sock);
}

/* walk_frames adds the extents of an HTTP/2 connection's syscall to e.
 * Its bytes are walked across its iovec entries (writev, sendmsg), up to
 * IOV_ALL_MAX of them: a syscall with more, or more frames and entries
 * than FRAMES_MAX, loses the walk (flagged), and the parser finds its way
 * again by itself. */
static __always_inline void walk_frames(struct event *e, struct moved *m, bool reading)
{
	__u32 from;
	struct frame_walk *fw = walked_state(e, &from);
	if (!fw)
		return;
	struct walk w = {.e = e, .d = &fw->dir[reading ? 0 : 1], .len = m->len, .o = from, .head = e->cap_len};
	if (m->niov) { /* runs found as the walk goes */
		w.iov = m->iov_user;
		w.count = m->count;
	} else { /* one buffer: one run */
		w.base = m->base;
		w.end = m->len;
	}
	bpf_loop(FRAMES_MAX, frame_step, &w, 0);
	launder(&w.base, sizeof(w) - __builtin_offsetof(struct walk, base));
	e->ext_len = w.used;
	if (w.short_)
		e->flags |= EVENT_FLAG_FRAMES_SHORT;
	if (w.o < m->len) { /* more frames than walked, or not frames: lost */
		e->flags |= EVENT_FLAG_FRAMES_SHORT;
		if (bpf_map_delete_elem(&frame_socks, &e->sock) == 0)
			frames_counted(-1);
	}
}

/* forget_frames drops a closing connection's walk. */
static __always_inline void forget_frames(__u64 sock)
{
	if (bpf_map_delete_elem(&frame_socks, &sock) == 0)
		frames_counted(-1);
}

#endif
