package events

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

func event(kind Kind, local, remote netip.AddrPort, data string, length uint32, tail string) Event {
	return Event{Kind: kind, Pid: 4242, Tid: 4243, FD: 7, Time: 123456789, Sock: 0xffff888812345678,
		Netns: 4026531840, Local: local, Remote: remote, Len: length, Data: []byte(data), Tail: []byte(tail)}
}

func TestDecode(t *testing.T) {
	local := netip.MustParseAddrPort("127.0.0.1:8080")
	remote := netip.MustParseAddrPort("10.1.2.3:51000")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.7"), 80)
	unmapped := netip.MustParseAddrPort("192.0.2.7:80")

	tests := []struct {
		name string
		in   Event
		want Event
	}{
		{"ipv4 read", event(Read, local, remote, "GET / HTTP/1.1\r\n", 16, ""), event(Read, local, remote, "GET / HTTP/1.1\r\n", 16, "")},
		{"ipv6 write with tail", event(Write, v6, v6, "HTTP/1.1 200", 9000, "\r\n0\r\n\r\n"), event(Write, v6, v6, "HTTP/1.1 200", 9000, "\r\n0\r\n\r\n")},
		{"v4-mapped v6 is unmapped", event(Read, mapped, mapped, "", 0, ""), event(Read, unmapped, unmapped, "", 0, "")},
		{"connect", event(Connect, local, remote, "", 0, ""), event(Connect, local, remote, "", 0, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			require.NoError(t, Decode(Encode(&tt.in), &e))
			assert.Equal(t, tt.want, e)
		})
	}
}

func TestDecodeAfterLoss(t *testing.T) {
	in := event(Read, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), "", 0, "")
	var e Event
	require.NoError(t, Decode(Encode(&in), &e))
	assert.False(t, e.AfterLoss)
	in.AfterLoss = true
	require.NoError(t, Decode(Encode(&in), &e))
	assert.True(t, e.AfterLoss)
}

func TestDecodeChosen(t *testing.T) {
	in := event(Write, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), "", 0, "")
	var id tracecontext.Identity
	for i := range id.TraceID {
		id.TraceID[i] = byte(96 + i)
	}
	id.SpanID = [8]byte{112, 113, 114, 115, 116, 117, 118, 119}
	id.ParentID = [8]byte{120, 121, 122, 123, 124, 125, 126, 127}
	id.Flags = 1
	var e Event
	for _, kind := range []tracecontext.ChosenKind{tracecontext.Served, tracecontext.Injected} {
		in.Chosen = tracecontext.Chosen{Kind: kind, Identity: id}
		in.AfterLoss = true
		require.NoError(t, Decode(Encode(&in), &e))
		assert.Equal(t, in.Chosen, e.Chosen)
		assert.True(t, e.AfterLoss)
	}
	in.Chosen = tracecontext.Chosen{Kind: tracecontext.NotInjected, Reason: 2, Identity: id}
	require.NoError(t, Decode(Encode(&in), &e))
	assert.Equal(t, tracecontext.Chosen{Kind: tracecontext.NotInjected, Reason: 2}, e.Chosen, "ids go only with a context")
	assert.Equal(t, "reused_connection", bpf.NotInjectedReasons[e.Chosen.Reason])
}

// HTTP/2 frames past the head come as extent records after it.
func TestDecodeExtents(t *testing.T) {
	in := event(Read, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), "head", 9000, "")
	in.Extents = AppendExtent(AppendExtent(nil, 5000, []byte("frame header")), 8000, []byte("headers"))
	in.FramesShort = true
	var e Event
	require.NoError(t, Decode(Encode(&in), &e))
	assert.True(t, e.FramesShort)
	assert.Equal(t, "head", string(e.Data))
	var got []string
	for rest := e.Extents; ; {
		off, data, next, ok := NextExtent(rest)
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%d:%s", off, data))
		rest = next
	}
	assert.Equal(t, []string{"5000:frame header", "8000:headers"}, got)
	_, _, _, ok := NextExtent([]byte{1, 0, 0, 0, 99, 0, 'x'})
	assert.False(t, ok, "a record claiming more than it carries")
}

func TestDecodeRejectsMalformed(t *testing.T) {
	in := event(Read, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), "abc", 3, "")
	good := Encode(&in)
	var e Event
	assert.ErrorContains(t, Decode(good[:50], &e), fmt.Sprintf("shorter than its %d-byte header", bpf.HeaderSize))
	assert.ErrorContains(t, Decode(good[:len(good)-1], &e), "claims 3 captured bytes and 0 of extents but carries 2")
	bad := append([]byte(nil), good...)
	bad[offTailLen] = 17
	assert.ErrorContains(t, Decode(bad, &e), "17-byte tail")
}

func FuzzDecode(f *testing.F) {
	r := event(Read, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), "GET / HTTP/1.1\r\n\r\n", 18, "")
	w := event(Write, netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::1]:2"), "", 1<<20, "0\r\n\r\n")
	f.Add(Encode(&r))
	f.Add(Encode(&w))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e Event
		if Decode(raw, &e) != nil {
			return
		}
		if len(e.Data) > len(raw) || len(e.Tail) > tailMax {
			t.Fatalf("decoded slices larger than the record: data %d, tail %d", len(e.Data), len(e.Tail))
		}
	})
}
