package http1

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStartLine(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		req, rsp  bool // kinds allowed
		want      lineVerdict
		method    string
		target    string
		minor     byte
		status    int
		usableCut bool // usable if the line were cut after these bytes
	}{
		{"request", "GET /x?y=1 HTTP/1.1\r\n", true, true, lineRequest, "GET", "/x?y=1", '1', 0, true},
		{"request 1.0", "POST * HTTP/1.0\r\n", true, false, lineRequest, "POST", "*", '0', 0, true},
		{"method of 20 bytes", strings.Repeat("A", 20) + " / HTTP/1.1\r\n", true, false, lineRequest, strings.Repeat("A", 20), "/", '1', 0, true},
		{"method with dash", "VERSION-CONTROL / HTTP/1.1\r\n", true, false, lineRequest, "VERSION-CONTROL", "/", '1', 0, true},
		{"raw UTF-8 target", "GET /caf\xc3\xa9 HTTP/1.1\r\n", true, false, lineRequest, "GET", "/caf\xc3\xa9", '1', 0, true},
		{"status", "HTTP/1.1 404 Not Found\r\n", true, true, lineStatus, "", "", '1', 404, true},
		{"status without reason", "HTTP/1.0 200\r\n", false, true, lineStatus, "", "", '0', 200, true},
		{"status with empty reason", "HTTP/1.1 200 \r\n", false, true, lineStatus, "", "", '1', 200, true},
		{"status with tab in reason", "HTTP/1.1 599 a\tb\r\n", false, true, lineStatus, "", "", '1', 599, true},
		{"request prefix", "GET /inc", true, false, lineMore, "", "", 0, 0, true},
		{"method only", "GET ", true, false, lineMore, "", "", 0, 0, false},
		{"status prefix", "HTTP/1.1 20", false, true, lineMore, "", "", 0, 0, false},
		{"ambiguous prefix", "HTTP", true, true, lineMore, "", "", 0, 0, false},
		{"status where only requests go", "HTTP/1.1 200 OK\r\n", true, false, lineBad, "", "", 0, 0, false},
		{"request where only responses go", "GET / HTTP/1.1\r\n", false, true, lineBad, "", "", 0, 0, false},
		{"lower-case method", "get / HTTP/1.1\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"digit in method", "G3T / HTTP/1.1\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"method of 21 bytes", strings.Repeat("A", 21) + " / HTTP/1.1\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"leading dash", "-GET / HTTP/1.1\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"empty target", "GET  HTTP/1.1\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"DEL in target", "GET /\x7f HTTP/1.1\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"HTTP/1.2", "GET / HTTP/1.2\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"HTTP/2.0", "PRI * HTTP/2.0\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"bare LF", "GET / HTTP/1.1\n", true, true, lineBad, "", "", 0, 0, false},
		{"trailing space", "GET / HTTP/1.1 \r\n", true, true, lineBad, "", "", 0, 0, false},
		{"status 099", "HTTP/1.1 099 X\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"status of 4 digits", "HTTP/1.1 2000 X\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"NUL in reason", "HTTP/1.1 200 O\x00K\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"CR without LF", "HTTP/1.1 200 OK\r\r\n", true, true, lineBad, "", "", 0, 0, false},
		{"TLS", "\x16\x03\x01\x02\x00", true, true, lineBad, "", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and then byte by byte: the verdict must be the same.
			for _, step := range []int{len(tt.line), 1} {
				var l startLine
				l.init(tt.req, tt.rsp)
				v := lineMore
				for n := step; v == lineMore && n <= len(tt.line)+step-1; n += step {
					v = l.scan([]byte(tt.line)[:min(n, len(tt.line))])
				}
				assert.Equal(t, tt.want, v, "in steps of %d", step)
				switch v {
				case lineRequest:
					assert.Equal(t, tt.method, tt.line[:l.methodEnd])
					assert.Equal(t, tt.target, tt.line[l.methodEnd+1:l.targetEnd])
					assert.Equal(t, len(tt.line), l.pos)
					assert.Equal(t, tt.minor, l.minor)
				case lineStatus:
					assert.Equal(t, tt.status, l.status)
					assert.Equal(t, len(tt.line), l.pos)
					assert.Equal(t, tt.minor, l.minor)
				}
				if v != lineBad {
					assert.Equal(t, tt.usableCut, l.usable(len(tt.line)))
				}
			}
		})
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		name    string
		section string // after the start line
		end     int
		want    fields
	}{
		{"none", "\r\n", 2, fields{length: -1}},
		{"host and traceparent", "Host: a.b:80\r\ntraceparent:  " + tp + " \r\n\r\n", -2,
			fields{host: []byte("a.b:80"), hasHost: true, traceparent: []byte(tp), hasTP: true, length: -1}},
		{"first Host wins", "Host: one\r\nHOST: two\r\n\r\n", -2, fields{host: []byte("one"), hasHost: true, length: -1}},
		{"empty Host", "Host:\r\n\r\n", -2, fields{host: []byte{}, hasHost: true, length: -1}},
		{"length", "Content-Length: 42\r\n\r\n", -2, fields{length: 42}},
		{"equal lengths", "Content-Length: 7, 7\r\ncontent-length: 7\r\n\r\n", -2, fields{length: 7}},
		{"differing lengths", "Content-Length: 7\r\nContent-Length: 8\r\n\r\n", -2, fields{length: 7, badLength: true}},
		{"signed length", "Content-Length: +7\r\n\r\n", -2, fields{length: -1, badLength: true}},
		{"huge length", "Content-Length: 1234567890123456789\r\n\r\n", -2, fields{length: -1, badLength: true}},
		{"chunked", "Transfer-Encoding: gzip, Chunked\r\n\r\n", -2, fields{length: -1, te: true, chunked: true}},
		{"chunked then gzip", "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", -2, fields{length: -1, te: true}},
		{"junk lines are skipped", "no colon\r\n: empty name\r\nContent-Length : 3\r\nHost: h\r\n\r\n", -2,
			fields{host: []byte("h"), hasHost: true, length: -1}},
		{"bare LF lines are read", "Host: h\nContent-Length: 3\n\r\n\r\n", -2,
			fields{host: []byte("h"), hasHost: true, length: 3}},
		{"cut last line is left out", "Host: h\r\nContent-Length: 12", -1, fields{host: []byte("h"), hasHost: true, length: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fields
			end := f.parse([]byte(tt.section))
			want := tt.end
			if want == -2 {
				want = len(tt.section)
			}
			assert.Equal(t, want, end)
			assert.Equal(t, tt.want, f)
			// The blank line the fields end at is the one headEnd finds.
			head := "GET / HTTP/1.1\r\n" + tt.section
			if e := headEnd([]byte(head), 14); e >= 0 {
				assert.Equal(t, e, 16+end)
			} else {
				assert.Equal(t, -1, end)
			}
		})
	}
}

func TestChunkedFraming(t *testing.T) {
	tests := []struct {
		name string
		body string
		rest string
		lost bool
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "", false},
		{"upper and lower hex", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", "", false},
		{"extensions", "3;a=b;c\r\nabc\r\n0;last\r\n\r\n", "", false},
		{"size with spaces before extension", "3 ;a=b\r\nabc\r\n0\r\n\r\n", "", false},
		{"trailers", "3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", "", false},
		{"next message follows", "0\r\n\r\nGET", "GET", false},
		{"leading zeros", "0003\r\nabc\r\n0\r\n\r\n", "", false},
		{"no digit", "\r\nabc\r\n", "", true},
		{"bad digit", "3x\r\nabc\r\n", "", true},
		{"missing CRLF after data", "3\r\nabcd\r\n0\r\n\r\n", "", true},
		{"too many digits", "1000000000000000\r\n", "", true},
		{"bare LF in extension", "3;a\nabc", "", true},
	}
	for _, tt := range tests {
		for _, step := range []int{len(tt.body), 1} {
			c := newTestConn()
			s := &c.streams[Outbound]
			s.st, s.cs = stChunked, csSize
			var rest string
			b := []byte(tt.body)
			for i := 0; i < len(b) && s.st == stChunked; i += step {
				end := min(i+step, len(b))
				rest = string(c.chunked(s, b[i:end], 1)) + string(b[end:])
			}
			assert.Equal(t, tt.lost, s.st == stChunkLost, "%s in steps of %d", tt.name, step)
			if !tt.lost {
				assert.Equal(t, stIdle, s.st, "%s in steps of %d", tt.name, step)
				assert.Equal(t, tt.rest, rest, "%s in steps of %d", tt.name, step)
			}
		}
	}
}

func TestDecodedChunkSize(t *testing.T) {
	c := newTestConn()
	var got []Exchange
	emit := func(x Exchange) { got = append(got, x) }
	c.Feed(Inbound, &Segment{Data: []byte(getA), Len: len(getA), Time: 1}, emitter(emit))
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(strings.Repeat("q", 1000), 77)
	c.Feed(Outbound, &Segment{Data: []byte(resp), Len: len(resp), Time: 2}, emitter(emit))
	if assert.Len(t, got, 1) {
		assert.Equal(t, int64(1000), got[0].ResponseBodySize)
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 10, "abc"},
		{"abcdef", 3, "abc"},
		{"caf\xc3\xa9", 4, "caf"}, // a cut inside é drops it
		{"caf\xc3\xa9", 5, "caf\u00e9"},
		{"a\xffb", 10, "a\ufffdb"},
		{"\xff\xff\xff", 4, "\ufffd"}, // the replacement grows: cut again
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, text([]byte(tt.in), tt.limit), "%q", tt.in)
	}
}

func TestMethodInterning(t *testing.T) {
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "QUERY", "PROPFIND"} {
		b := []byte(m)
		assert.Equal(t, m, method(b))
		assert.Zero(t, testing.AllocsPerRun(10, func() { _ = method(b) }), m)
	}
	assert.Equal(t, "PURGE", method([]byte("PURGE")))
}
