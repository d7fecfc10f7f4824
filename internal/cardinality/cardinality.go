// Package cardinality bounds the values an attribute takes per service: a
// peer that sends made-up paths or methods (scanners do) must not make a
// metric series each.
package cardinality // import "github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"

import "sync"

// Limit keeps the first max values of each service as they are; later
// ones are replaced by an overflow value, and counted. A value once kept
// stays kept, so a span and its metric always agree. It is safe for
// concurrent use.
type Limit struct {
	mu       sync.Mutex
	max      int
	services map[string]map[string]struct{}
	overflow uint64
}

// New returns a Limit of at most max values per service.
func New(max int) *Limit {
	return &Limit{max: max, services: map[string]map[string]struct{}{}}
}

// Admit returns value when service may have it, else overflow.
func (l *Limit) Admit(service, value, overflow string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := l.services[service]
	if seen == nil {
		seen = map[string]struct{}{}
		l.services[service] = seen
	}
	if _, ok := seen[value]; ok {
		return value
	}
	if len(seen) >= l.max {
		l.overflow++
		return overflow
	}
	seen[value] = struct{}{}
	return value
}

// Overflowed counts the values replaced for want of room.
func (l *Limit) Overflowed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.overflow
}

// Forget drops what is kept of service, when its last process ended.
func (l *Limit) Forget(service string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.services, service)
}
