package events

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Reader reads records from the kernel's ring buffer.
type Reader struct {
	rb  *ringbuf.Reader
	rec ringbuf.Record
}

// NewReader reads from the ring buffer map m.
func NewReader(m *ebpf.Map) (*Reader, error) {
	rb, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return &Reader{rb: rb}, nil
}

// ErrClosed is returned by Next once Close was called.
var ErrClosed = errors.New("event reader closed")

// ErrTimeout is returned by Next when no record came before the deadline.
var ErrTimeout = os.ErrDeadlineExceeded

// SetDeadline makes Next return ErrTimeout after t; zero means no deadline.
func (r *Reader) SetDeadline(t time.Time) { r.rb.SetDeadline(t) }

// Next returns the next raw record. Its bytes are valid until the next call.
func (r *Reader) Next() ([]byte, error) {
	if err := r.rb.ReadInto(&r.rec); err != nil {
		if errors.Is(err, ringbuf.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	return r.rec.RawSample, nil
}

// Close unblocks Next and frees the reader.
func (r *Reader) Close() error { return r.rb.Close() }
