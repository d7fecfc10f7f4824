// Package http1 parses HTTP/1.0 and HTTP/1.1 from the bytes a process moved
// on one TCP connection, as the kernel captured them (a prefix of each
// syscall's bytes, with the count of the rest), and pairs every request with
// its response.
//
// It never trusts the peer: heads are bounded, unanswered requests are
// bounded, and bytes that are not HTTP are counted and skipped.
package httpconn // import "github.com/otelcol-ebpf/ebpfreceiver/internal/httpconn"

// Segment is what one syscall moved on a connection.
type Segment struct {
	Data []byte // captured bytes: a prefix of the bytes moved (maybe shorter than Len, maybe empty)
	Len  int    // bytes moved in total (>= len(Data)); the rest were not captured: a gap
	Tail []byte // when Len > len(Data): the last bytes moved (maybe empty)
	Time uint64 // kernel monotonic time of the syscall, ns
}

// Direction says who moved the bytes.
type Direction uint8

const (
	Inbound  Direction = iota // bytes the watched process read
	Outbound                  // bytes the watched process wrote
)

// Role is the watched process's side of a connection.
type Role uint8

const (
	RoleServer Role = iota + 1 // the watched process read the request
	RoleClient                 // the watched process wrote the request
)

// Exchange is one request and its response.
type Exchange struct {
	Role        Role
	Method      string
	Target      string // request-target as sent (truncated to MaxTarget)
	Version     string // of the request: "1.0" or "1.1"
	Host        string
	Traceparent string
	Status      int // 0 when no response was seen

	RequestStart, RequestEnd   uint64
	ResponseStart, ResponseEnd uint64

	RequestBodySize, ResponseBodySize int64

	// Partial is true when part of a head was not captured, so some header
	// fields may be missing.
	Partial bool

	// Tag is the Handler's own: set in Started, carried to Done.
	Tag any
}

// Handler receives the exchanges of a connection. The *Exchange is valid
// only during the call.
type Handler interface {
	// Started is called when a request's head was read, before its
	// response: the moment to give it an identity others can link to.
	Started(x *Exchange)
	// Done is called when the exchange ended, in request order.
	Done(x *Exchange)
}

// Stats count what a connection could not use.
type Stats struct {
	NotHTTP         uint64 // segments, or their rests, skipped as not HTTP
	PendingOverflow uint64 // requests dropped: too many unanswered
	HeadTooLarge    uint64 // heads larger than MaxHead
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.NotHTTP += o.NotHTTP
	s.PendingOverflow += o.PendingOverflow
	s.HeadTooLarge += o.HeadTooLarge
}

const (
	// MaxHead bounds the bytes of one head kept while it arrives.
	MaxHead = 64 << 10
	// MaxPending bounds the requests waiting for a response on a connection.
	MaxPending = 64
	// MaxTarget bounds the request-target kept.
	MaxTarget = 8 << 10
	maxMethod = 20
)
