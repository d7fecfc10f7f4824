package events

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// record builds a raw event as the kernel lays it out.
func record(kind Kind, family byte, local, remote netip.AddrPort, data []byte, length uint32, tail []byte) []byte {
	raw := make([]byte, bpf.HeaderSize+len(data))
	le := binary.LittleEndian
	raw[0] = byte(kind)
	raw[1] = family
	le.PutUint16(raw[2:], local.Port())
	le.PutUint16(raw[4:], remote.Port())
	le.PutUint16(raw[6:], uint16(len(data)))
	le.PutUint32(raw[8:], 4242)
	le.PutUint32(raw[12:], 4243)
	le.PutUint32(raw[16:], 7)
	le.PutUint32(raw[20:], length)
	raw[24] = byte(len(tail))
	le.PutUint64(raw[32:], 123456789)
	le.PutUint64(raw[40:], 0xffff888812345678)
	l16, r16 := local.Addr().As16(), remote.Addr().As16()
	if family == afInet {
		l4, r4 := local.Addr().As4(), remote.Addr().As4()
		copy(raw[48:], l4[:])
		copy(raw[64:], r4[:])
	} else {
		copy(raw[48:], l16[:])
		copy(raw[64:], r16[:])
	}
	copy(raw[80:], tail)
	copy(raw[bpf.HeaderSize:], data)
	return raw
}

func TestDecode(t *testing.T) {
	local := netip.MustParseAddrPort("127.0.0.1:8080")
	remote := netip.MustParseAddrPort("10.1.2.3:51000")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.7"), 80)

	tests := []struct {
		name         string
		raw          []byte
		local, remot netip.AddrPort
		data, tail   string
		length       uint32
	}{
		{"ipv4 read", record(Read, afInet, local, remote, []byte("GET / HTTP/1.1\r\n"), 16, nil), local, remote, "GET / HTTP/1.1\r\n", "", 16},
		{"ipv6 write with tail", record(Write, afInet6, v6, v6, []byte("HTTP/1.1 200"), 9000, []byte("\r\n0\r\n\r\n")), v6, v6, "HTTP/1.1 200", "\r\n0\r\n\r\n", 9000},
		{"v4-mapped v6 is unmapped", record(Read, afInet6, mapped, mapped, nil, 0, nil),
			netip.MustParseAddrPort("192.0.2.7:80"), netip.MustParseAddrPort("192.0.2.7:80"), "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			require.NoError(t, Decode(tt.raw, &e))
			assert.Equal(t, tt.local, e.Local)
			assert.Equal(t, tt.remot, e.Remote)
			assert.Equal(t, tt.data, string(e.Data))
			assert.Equal(t, tt.tail, string(e.Tail))
			assert.Equal(t, tt.length, e.Len)
			assert.Equal(t, uint32(4242), e.Pid)
			assert.Equal(t, uint32(7), e.FD)
			assert.Equal(t, uint64(123456789), e.Time)
			assert.Equal(t, uint64(0xffff888812345678), e.Sock)
		})
	}
}

func TestDecodeAfterLoss(t *testing.T) {
	raw := record(Read, afInet, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), nil, 0, nil)
	var e Event
	require.NoError(t, Decode(raw, &e))
	assert.False(t, e.AfterLoss)
	raw[25] = bpf.EventFlagAfterLoss
	require.NoError(t, Decode(raw, &e))
	assert.True(t, e.AfterLoss)
}

func TestDecodeContext(t *testing.T) {
	raw := record(Write, afInet, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), nil, 0, nil)
	for i := 96; i < 128; i++ {
		raw[i] = byte(i)
	}
	raw[26] = 1 // sampled
	var e Event
	require.NoError(t, Decode(raw, &e))
	assert.Equal(t, NoContext, e.Context.Kind)
	for flag, kind := range map[byte]ContextKind{
		bpf.EventFlagContext: Served, bpf.EventFlagInjected: Injected, bpf.EventFlagNotInjected: NotInjected,
	} {
		raw[25] = flag | bpf.EventFlagAfterLoss
		require.NoError(t, Decode(raw, &e))
		assert.Equal(t, kind, e.Context.Kind)
		assert.True(t, e.AfterLoss)
		if kind == NotInjected {
			continue
		}
		assert.Equal(t, byte(1), e.Context.Flags)
		assert.Equal(t, byte(96), e.Context.TraceID[0])
		assert.Equal(t, byte(111), e.Context.TraceID[15])
		assert.Equal(t, [8]byte{112, 113, 114, 115, 116, 117, 118, 119}, e.Context.SpanID)
		assert.Equal(t, [8]byte{120, 121, 122, 123, 124, 125, 126, 127}, e.Context.ParentID)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := record(Read, afInet, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), []byte("abc"), 3, nil)
	var e Event
	assert.ErrorContains(t, Decode(good[:50], &e), "shorter than its 128-byte header")
	assert.ErrorContains(t, Decode(good[:len(good)-1], &e), "claims 3 captured bytes but carries 2")
	bad := append([]byte(nil), good...)
	bad[24] = 17
	assert.ErrorContains(t, Decode(bad, &e), "17-byte tail")
}

func FuzzDecode(f *testing.F) {
	f.Add(record(Read, afInet, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), []byte("GET / HTTP/1.1\r\n\r\n"), 18, nil))
	f.Add(record(Write, afInet6, netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::1]:2"), nil, 1<<20, []byte("0\r\n\r\n")))
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
