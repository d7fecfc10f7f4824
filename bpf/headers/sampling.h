/* The receiver's trace sampler (internal/sampling), for the traces the
 * kernel starts or continues when it chooses a span's ids: the sampled
 * flag it puts in an outgoing traceparent is the decision the receiver
 * then makes, so every hop of a trace decides alike. The rule is the
 * OpenTelemetry SDK's: the last 8 bytes of the trace id, shifted right by
 * one, below ratio * 2^63. */
#ifndef TRACER_SAMPLING_H
#define TRACER_SAMPLING_H

enum sample_mode {
	SAMPLE_ALWAYS_ON = 0,
	SAMPLE_ALWAYS_OFF = 1,
	SAMPLE_RATIO = 2,        /* by trace id, whatever the parent said */
	SAMPLE_PARENT_RATIO = 3, /* as a remote parent said; roots by trace id */
};

/* Set by the loader. */
volatile const __u32 sample_mode = SAMPLE_ALWAYS_ON;
volatile const __u64 sample_bound = 0;

static __always_inline bool sampled_by_id(const __u8 *trace_id)
{
	if (sample_bound == ~0ULL)
		return true;
	__u64 x = 0;
	for (int i = 8; i < 16; i++)
		x = (x << 8) | trace_id[i];
	return (x >> 1) < sample_bound;
}

/* sample_flags are the trace flags of a span of trace trace_id that
 * continues a traceparent with flags (remote), or starts the trace. */
static __always_inline __u8 sample_flags(const __u8 *trace_id, bool remote, __u8 flags)
{
	bool sampled = true;
	switch (sample_mode) {
	case SAMPLE_ALWAYS_OFF:
		sampled = false;
		break;
	case SAMPLE_RATIO:
		sampled = sampled_by_id(trace_id);
		break;
	case SAMPLE_PARENT_RATIO:
		if (remote)
			return flags;
		sampled = sampled_by_id(trace_id);
		break;
	}
	return sampled ? (flags | 1) : (flags & ~1);
}

#endif
