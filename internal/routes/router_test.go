package routes

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoute(t *testing.T) {
	r, err := New([]string{"/users/{id}", "/users/{id}/orders/{order}", "/static/*", "/"}, Heuristic)
	require.NoError(t, err)
	for path, want := range map[string]string{
		"/users/42":            "/users/{id}",
		"/users/42/":           "/users/{id}",
		"/users/42/orders/7":   "/users/{id}/orders/{order}",
		"/users/42/orders":     "/users/*/orders",
		"/static/css/site.css": "/static/*",
		"/static":              "/static",
		"/":                    "/",
		"":                     "/",
		"/api/v2/items":        "/api/v2/items",
		"/files/deadbeefcafe":  "/files/*",
		"/orders/550e8400-e29b-41d4-a716-446655440000/items": "/orders/*/items",
		"/t/aGVsbG8gd29ybGQ0MjQy":                            "/t/*",
		"/about/team":                                        "/about/team",
		"/cafe/beef":                                         "/cafe/beef",
	} {
		assert.Equal(t, want, r.Route(path), path)
	}
}

func TestUnmatchedModes(t *testing.T) {
	p, err := New(nil, Path)
	require.NoError(t, err)
	assert.Equal(t, "/users/42", p.Route("/users/42"))
	w, err := New(nil, Wildcard)
	require.NoError(t, err)
	assert.Equal(t, "/**", w.Route("/users/42"))
	d, err := New(nil, "")
	require.NoError(t, err)
	assert.Equal(t, "/users/*", d.Route("/users/42"))
}

func TestNewReportsEveryError(t *testing.T) {
	_, err := New([]string{"users", "/a/{}", "/b/{x", "/c/*/d", "/ok/{id}"}, "sometimes")
	require.Error(t, err)
	for _, want := range []string{`unmatched "sometimes"`, `pattern "users": must start with /`,
		`pattern "/a/{}"`, `pattern "/b/{x": segment "{x" has unbalanced braces`, `pattern "/c/*/d": * may only be the last segment`} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "/ok/{id}")
}

func TestMatchDoesNotAllocate(t *testing.T) {
	r, err := New([]string{"/users/{id}"}, Heuristic)
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() { r.Route("/users/42") }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { r.Route("/api/v2/items") }))
}

func BenchmarkRoute(b *testing.B) {
	r, _ := New([]string{"/users/{id}", "/static/*"}, Heuristic)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Route("/orders/12345/items")
	}
}
