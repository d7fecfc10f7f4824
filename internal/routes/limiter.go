package routes

// Overflow is the route of the paths a service had no room left for.
const Overflow = "_OTHER"

// Limiter bounds the distinct routes of each service: a peer that sends
// made-up paths (scanners do) must not make a series per path. The first
// max routes of a service are kept as they are; later ones become
// Overflow, and are counted. A route once kept stays kept, so a span and
// its metric always agree. It is not safe for concurrent use.
type Limiter struct {
	router   *Router
	max      int
	services map[string]map[string]struct{}
	overflow uint64
}

// NewLimiter returns a Limiter of at most max routes per service, made by
// router.
func NewLimiter(router *Router, max int) *Limiter {
	return &Limiter{router: router, max: max, services: map[string]map[string]struct{}{}}
}

// Route returns the http.route of path for service.
func (l *Limiter) Route(service, path string) string {
	route := l.router.Route(path)
	seen := l.services[service]
	if seen == nil {
		seen = map[string]struct{}{}
		l.services[service] = seen
	}
	if _, ok := seen[route]; ok {
		return route
	}
	if len(seen) >= l.max {
		l.overflow++
		return Overflow
	}
	seen[route] = struct{}{}
	return route
}

// Overflowed counts the requests given Overflow for want of room.
func (l *Limiter) Overflowed() uint64 { return l.overflow }

// Forget drops what is kept of service, when its last process ended.
func (l *Limiter) Forget(service string) { delete(l.services, service) }
