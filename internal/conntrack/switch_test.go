package conntrack

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// records keeps every record a table's parsers report, with the Tag its
// request got at Started.
type records struct {
	started int
	done    []protocols.Record
}

func (s *records) Started(x *protocols.Exchange) { s.started++; x.Tag = s.started }
func (s *records) Failed(string)                 {}

// Done keeps a copy: the record is the parser's, reused after the call.
func (s *records) Done(r protocols.Record) {
	switch x := r.(type) {
	case *http1.Exchange:
		y := *x
		r = &y
	case *http2.Exchange:
		y := *x
		r = &y
	}
	s.done = append(s.done, r)
}

func newSwitchTable(t *testing.T, ps ...protocols.Protocol) (*Table, *records) {
	router, err := routes.New(nil, "")
	require.NoError(t, err)
	opts := &protocols.Options{Routes: routes.NewLimiter(router, 100), RPCMethods: cardinality.New(100)}
	s := &records{}
	return New(protocols.NewRegistry(ps...), opts, func(c *Conn) { c.Sink = s }), s
}

const (
	h2cRequest = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n" +
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
	h2c101 = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
)

// serverAnswer is the server's HTTP/2 frames after its 101 head: its
// SETTINGS, and stream 1's response (200, body of n bytes).
func serverAnswer(t *testing.T, n int) []byte {
	var out, block bytes.Buffer
	fr := xhttp2.NewFramer(&out, nil)
	require.NoError(t, fr.WriteSettings(xhttp2.Setting{ID: xhttp2.SettingMaxConcurrentStreams, Val: 250}))
	enc := hpack.NewEncoder(&block)
	require.NoError(t, enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"}))
	require.NoError(t, enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "text/plain"}))
	require.NoError(t, fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true}))
	require.NoError(t, fr.WriteData(1, true, make([]byte, n)))
	return out.Bytes()
}

// clientFrames is the client's preface and SETTINGS after the 101.
func clientFrames(t *testing.T) []byte {
	var out bytes.Buffer
	out.WriteString(xhttp2.ClientPreface)
	fr := xhttp2.NewFramer(&out, nil)
	require.NoError(t, fr.WriteSettings())
	require.NoError(t, fr.WriteSettingsAck())
	return out.Bytes()
}

// An HTTP/1.1 request upgraded to h2c: the connection goes on in HTTP/2,
// whose parser answers the request on stream 1: one exchange, with the
// request's times and Tag and HTTP/2's response, whether the 101 and the
// first frames come in one segment or not.
func TestH2CUpgradeHandsOver(t *testing.T) {
	answer := serverAnswer(t, 13)
	for _, role := range []protocols.Role{protocols.RoleServer, protocols.RoleClient} {
		for _, together := range []bool{true, false} {
			tb, s := newSwitchTable(t, http1.Protocol, http2.Protocol)
			key := Key{Pid: 1, Sock: 1}
			tb.Open(key, 7, local, remote, role, 1)
			reqDir, respDir := protocols.Inbound, protocols.Outbound
			if role == protocols.RoleClient {
				reqDir, respDir = protocols.Outbound, protocols.Inbound
			}
			feed(tb, key, reqDir, 10, h2cRequest)
			if together {
				feed(tb, key, respDir, 20, h2c101+string(answer[:15])) // the 101 and the server's SETTINGS
			} else {
				feed(tb, key, respDir, 20, h2c101)
				feed(tb, key, respDir, 21, string(answer[:15]))
			}
			c := feed(tb, key, reqDir, 30, string(clientFrames(t)))
			assert.Equal(t, "http2", c.Protocol().Name())
			feed(tb, key, respDir, 40, string(answer[15:]))
			require.Len(t, s.done, 1, "role %v", role)
			x, ok := s.done[0].(*http2.Exchange)
			require.True(t, ok, "%T", s.done[0])
			assert.Equal(t, http2.KindHTTP, x.Kind)
			assert.Equal(t, uint32(1), x.StreamID)
			assert.Equal(t, role, x.Role)
			assert.Equal(t, "GET", x.HTTP.Method)
			assert.Equal(t, "/hello", x.HTTP.Target)
			assert.Equal(t, "127.0.0.1:8080", x.HTTP.Host)
			assert.Equal(t, 200, x.HTTP.Status)
			assert.Equal(t, "2", x.HTTP.Version)
			assert.Equal(t, int64(13), x.HTTP.ResponseBodySize)
			assert.Equal(t, [4]uint64{10, 10, 40, 40}, [4]uint64{x.RequestStart, x.RequestEnd, x.ResponseStart, x.ResponseEnd})
			assert.Equal(t, 1, s.started, "one request, started once")
			assert.Equal(t, 1, x.Tag, "the Tag HTTP/1 gave it")
			tb.Close(key, 50)
			assert.Len(t, s.done, 1)
		}
	}
}

// HTTP/2 past a gap after the 101 head: the frames the kernel copied
// past the prefix (extents) reach the HTTP/2 parser at their offsets.
func TestH2CUpgradeRestWithExtents(t *testing.T) {
	answer := serverAnswer(t, 20000)
	tb, s := newSwitchTable(t, http1.Protocol, http2.Protocol)
	key := Key{Pid: 1, Sock: 2}
	tb.Open(key, 7, local, remote, protocols.RoleServer, 1)
	feed(tb, key, protocols.Inbound, 10, h2cRequest)
	all := h2c101 + string(answer)
	head := len(h2c101) + 15 // the 101, the SETTINGS, cut inside the HEADERS frame
	hdrEnd := len(all) - 20000 - 9
	seg := &protocols.Segment{Data: []byte(all[:head]), Len: len(all), Tail: []byte(all[len(all)-16:]), Time: 20,
		Extents: []protocols.Extent{{Off: head, Data: []byte(all[head:hdrEnd])}, {Off: hdrEnd, Data: []byte(all[hdrEnd : hdrEnd+9])}}}
	tb.Segment(key, 7, local, remote, protocols.Outbound, seg)
	feed(tb, key, protocols.Inbound, 30, string(clientFrames(t)))
	require.Len(t, s.done, 1)
	x := s.done[0].(*http2.Exchange)
	assert.Equal(t, 200, x.HTTP.Status)
	assert.Equal(t, int64(20000), x.HTTP.ResponseBodySize)
	assert.Equal(t, uint64(20), x.ResponseEnd)
}

// A registry without HTTP/2: the upgrade is an HTTP/1 exchange answered
// 101, and the connection carries nothing parsed after it.
func TestH2CUpgradeWithoutHTTP2(t *testing.T) {
	tb, s := newSwitchTable(t, http1.Protocol)
	key := Key{Pid: 1, Sock: 3}
	feed(tb, key, protocols.Inbound, 10, h2cRequest)
	feed(tb, key, protocols.Outbound, 20, h2c101+string(serverAnswer(t, 5)))
	c := feed(tb, key, protocols.Inbound, 30, string(clientFrames(t)))
	assert.Equal(t, "http1", c.Protocol().Name())
	require.Len(t, s.done, 1)
	x := s.done[0].(*http1.Exchange)
	assert.Equal(t, 101, x.Status)
	assert.Equal(t, "/hello", x.Target)
	tb.Close(key, 40)
	assert.Len(t, s.done, 1)
}
