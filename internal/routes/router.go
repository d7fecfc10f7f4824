// Package routes turns request paths into http.route values of bounded
// cardinality: configured patterns first, then a rule for the rest.
package routes // import "github.com/otelcol-ebpf/ebpfreceiver/internal/routes"

import (
	"errors"
	"fmt"
	"strings"
)

// Modes for paths that match no pattern.
const (
	Heuristic = "heuristic" // id-like segments become "*"
	Path      = "path"      // the path as it is
	Wildcard  = "wildcard"  // "/**"
)

// Router maps paths to routes. It is safe for concurrent use.
type Router struct {
	patterns  []pattern
	unmatched string
}

type pattern struct {
	route    string
	segments []string // "" stands for a {name} segment
	rest     bool     // ends in "*": matches one or more further segments
}

// New builds a Router from patterns such as "/users/{id}" or "/static/*",
// tried in order; unmatched is Heuristic (also ""), Path or Wildcard. It
// reports every bad pattern at once.
func New(patterns []string, unmatched string) (*Router, error) {
	var errs []error
	switch unmatched {
	case "":
		unmatched = Heuristic
	case Heuristic, Path, Wildcard:
	default:
		errs = append(errs, fmt.Errorf("unmatched %q: must be %q, %q or %q", unmatched, Heuristic, Path, Wildcard))
	}
	r := &Router{unmatched: unmatched}
	for _, p := range patterns {
		pat, err := parsePattern(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("pattern %q: %w", p, err))
			continue
		}
		r.patterns = append(r.patterns, pat)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func parsePattern(p string) (pattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pattern{}, errors.New("must start with /")
	}
	pat := pattern{route: p}
	segs := splitPath(p)
	for i, s := range segs {
		switch {
		case s == "*":
			if i != len(segs)-1 {
				return pattern{}, errors.New("* may only be the last segment")
			}
			pat.rest = true
			continue
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			if name == "" || strings.ContainsAny(name, "{}") {
				return pattern{}, fmt.Errorf("segment %q needs a name between braces", s)
			}
			s = ""
		case strings.ContainsAny(s, "{}"):
			return pattern{}, fmt.Errorf("segment %q has unbalanced braces", s)
		}
		pat.segments = append(pat.segments, s)
	}
	return pat, nil
}

// splitPath splits "/a/b/" into ["a", "b"]: empty segments (from "//" or a
// trailing "/") do not count.
func splitPath(p string) []string {
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

// Route returns the route of path (which has no query string).
func (r *Router) Route(path string) string {
	if path == "" {
		return "/"
	}
	for i := range r.patterns {
		if r.patterns[i].matches(path) {
			return r.patterns[i].route
		}
	}
	switch r.unmatched {
	case Path:
		return path
	case Wildcard:
		return "/**"
	}
	return heuristic(path)
}

// matches walks path segment by segment without allocating.
func (p *pattern) matches(path string) bool {
	i := 0
	for _, want := range p.segments {
		seg, next, ok := nextSegment(path, i)
		if !ok || (want != "" && seg != want) {
			return false
		}
		i = next
	}
	_, _, more := nextSegment(path, i)
	return more == p.rest
}

// nextSegment returns the next non-empty segment of path from index i.
func nextSegment(path string, i int) (string, int, bool) {
	for i < len(path) && path[i] == '/' {
		i++
	}
	if i >= len(path) {
		return "", i, false
	}
	j := strings.IndexByte(path[i:], '/')
	if j < 0 {
		return path[i:], len(path), true
	}
	return path[i : i+j], i + j, true
}

// heuristic replaces id-like segments by "*". It allocates only when it
// replaces something.
func heuristic(path string) string {
	var b strings.Builder
	last := 0
	for i := 0; ; {
		seg, next, ok := nextSegment(path, i)
		if !ok {
			break
		}
		if looksLikeID(seg) {
			start := next - len(seg)
			b.WriteString(path[last:start])
			b.WriteByte('*')
			last = next
		}
		i = next
	}
	if last == 0 {
		return path
	}
	b.WriteString(path[last:])
	return b.String()
}

// looksLikeID: all digits; a UUID (8-4-4-4-12 hex); hex of 12 or more, or of
// 8 or more with at least one digit; or a token of 16 or more characters mixing letters and
// digits (base64-ish ids, hashes). Words like "v2" or "users" stay.
func looksLikeID(s string) bool {
	digits, hex, alnum := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
			alnum++
		case (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'):
			hex++
			alnum++
		case (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z'), c == '-', c == '_':
			alnum++
		}
	}
	switch {
	case digits == len(s):
		return true
	case isUUID(s):
		return true
	case hex == len(s) && (len(s) >= 12 || (len(s) >= 8 && digits > 0)):
		return true
	case alnum == len(s) && len(s) >= 16 && digits > 0:
		return true
	}
	return false
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return false
		}
	}
	return true
}
