package routes

import "github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"

// Overflow is the route of the paths a service had no room left for.
const Overflow = "_OTHER"

// Limiter bounds the distinct routes of each service (see
// cardinality.Limit): the first max routes of a service are kept as they
// are; later ones become Overflow, and are counted.
type Limiter struct {
	router *Router
	*cardinality.Limit
}

// NewLimiter returns a Limiter of at most max routes per service, made by
// router.
func NewLimiter(router *Router, max int) *Limiter {
	return &Limiter{router: router, Limit: cardinality.New(max)}
}

// Route returns the http.route of path for service.
func (l *Limiter) Route(service, path string) string {
	return l.Admit(service, l.router.Route(path), Overflow)
}
