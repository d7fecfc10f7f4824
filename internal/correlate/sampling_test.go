package correlate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
)

func sampler(t *testing.T, name string, ratio float64) sampling.Sampler {
	s, err := sampling.New(name, ratio)
	require.NoError(t, err)
	return s
}

// What Sampled says before a span is resolved is what Resolve then gives
// it, for roots, children and spans that continue a traceparent; and the
// decision is the sampler's rule on the trace id.
func TestSampledAgreesWithResolve(t *testing.T) {
	for _, name := range []string{sampling.TraceIDRatio, sampling.ParentBasedTraceIDRatio} {
		smp := sampler(t, name, 0.5)
		kept := 0
		for i := range 400 {
			l := New()
			l.SetSampler(smp)
			f := flow("10.0.0.2:40000", fmt.Sprintf("10.0.0.1:%d", 8000+i))
			traceparent := ""
			if i%4 == 0 { // a quarter continue an unsampled remote parent
				traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
			}
			server := l.ServerStarted(2, Thread{Tid: 21}, f, "GET", "/a", traceparent, nil)
			l.Settle(server)
			call := l.ClientStarted(2, Thread{Tid: 21}, flow("127.0.0.1:40001", "127.0.0.1:5432"), "", "", "", nil)
			require.Same(t, server, call.parent, "the only request in flight is the call's parent")

			callSampled, sure := l.Sampled(call)
			require.True(t, sure, "a settled root decides its children")
			serverSampled, sure := l.Sampled(server)
			require.True(t, sure)
			require.Equal(t, serverSampled, callSampled, "a trace is sampled whole")

			l.Resolve(call)
			l.Resolve(server)
			require.Equal(t, server.TraceID, call.TraceID)
			assert.Equal(t, serverSampled, sampling.SampledFlags(server.Flags))
			assert.Equal(t, callSampled, sampling.SampledFlags(call.Flags))
			switch {
			case traceparent != "" && name == sampling.ParentBasedTraceIDRatio:
				assert.False(t, serverSampled, "parent-based follows the unsampled parent")
			default:
				assert.Equal(t, smp.Sampled(server.TraceID), serverSampled, "decided by the trace id")
			}
			if serverSampled {
				kept++
			}
		}
		t.Logf("%s 0.5: %d of 400 kept", name, kept)
		assert.Greater(t, kept, 100, name)
		assert.Less(t, kept, 300, name)
	}
}

// A server span whose client on this node may still be found is not
// decided before it is resolved: the client's trace may become its own.
func TestSampledWaitsForAServerThatMayBeLinked(t *testing.T) {
	l := New()
	l.SetSampler(sampler(t, sampling.TraceIDRatio, 0.5))
	f := flow("127.0.0.1:40000", "127.0.0.1:8080")
	server := l.ServerStarted(3, Thread{Tid: 31}, f, "GET", "/a", "", nil)
	_, sure := l.Sampled(server)
	assert.False(t, sure)
	client := l.ClientStarted(1, Thread{Tid: 11}, f, "GET", "/a", "", nil)
	l.Resolve(server)
	l.Resolve(client)
	assert.Equal(t, client.TraceID, server.TraceID)
	assert.Equal(t, client.Flags, server.Flags)
}

// always_off leaves every trace out; the zero sampler keeps every one.
func TestSamplerExtremes(t *testing.T) {
	for _, c := range []struct {
		s    sampling.Sampler
		want bool
	}{{sampler(t, sampling.AlwaysOff, 0), false}, {sampling.Sampler{}, true}} {
		l := New()
		l.SetSampler(c.s)
		s := l.ServerStarted(3, Thread{Tid: 31}, flow("10.0.0.2:1", "10.0.0.1:2"), "GET", "/", tp, nil)
		l.Settle(s)
		got, sure := l.Sampled(s)
		assert.True(t, sure)
		assert.Equal(t, c.want, got)
		l.Resolve(s)
		assert.Equal(t, c.want, sampling.SampledFlags(s.Flags))
	}
}
