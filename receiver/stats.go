package receiver

import "sync/atomic"

// Stats count what went through the receiver and what was lost on the way.
type Stats struct {
	EventsRead      atomic.Int64 // records read from the ring buffer
	EventsMalformed atomic.Int64 // records that did not decode
	Requests        atomic.Int64 // exchanges paired
	SpansQueued     atomic.Int64 // spans handed to the sender
	SpansDropped    atomic.Int64 // spans dropped: the sender's queue was full
	SpansSent       atomic.Int64 // spans the next consumer accepted
	SpansRefused    atomic.Int64 // spans the next consumer refused
	PointsSent      atomic.Int64 // metric data points accepted
	PointsRefused   atomic.Int64 // metric data points refused
}
