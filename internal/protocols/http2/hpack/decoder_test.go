package hpack

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	xhpack "golang.org/x/net/http2/hpack"
)

// field is a decoded field, or an unknown one ("?").
type field struct{ name, value string }

func (f field) String() string { return f.name + ": " + f.value }

var unknown = field{"?", "?"}

// collect is a Handler that keeps what it is given.
type collect struct{ fields []field }

func (c *collect) Field(name, value []byte, _ bool) {
	c.fields = append(c.fields, field{string(name), string(value)})
}
func (c *collect) Unknown() { c.fields = append(c.fields, unknown) }

func newDecoder() *Decoder {
	d := &Decoder{}
	d.Reset()
	return d
}

func dehex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tableOf lists the dynamic table, newest first, as RFC 7541 Appendix C
// prints it.
func tableOf(d *Decoder) []field {
	var out []field
	for i := 1; i <= d.t.len(); i++ {
		e, ok := d.t.get(uint64(i))
		if !ok {
			out = append(out, unknown)
			continue
		}
		out = append(out, field{string(d.t.name(e)), string(d.t.value(e))})
	}
	return out
}

// step is one header block of an Appendix C example, with the fields it
// decodes to and the dynamic table after it.
type step struct {
	block  string
	fields []field
	table  []field
	size   uint64
}

func runSteps(t *testing.T, d *Decoder, steps []step) {
	t.Helper()
	for i, s := range steps {
		var c collect
		if err := d.Decode(dehex(t, s.block), &c); err != nil {
			t.Fatalf("block %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(c.fields, s.fields) {
			t.Errorf("block %d: fields\n got %v\nwant %v", i+1, c.fields, s.fields)
		}
		if got := tableOf(d); !reflect.DeepEqual(got, s.table) {
			t.Errorf("block %d: table\n got %v\nwant %v", i+1, got, s.table)
		}
		if d.t.size != s.size {
			t.Errorf("block %d: table size %d, want %d", i+1, d.t.size, s.size)
		}
		if !d.Complete() {
			t.Errorf("block %d: table not complete", i+1)
		}
	}
}

// C.2: one field of each representation, each on a new decoder.
func TestRFC7541C2(t *testing.T) {
	for _, tc := range []struct {
		name string
		step step
	}{
		{"C.2.1 literal with indexing", step{
			"400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
			[]field{{"custom-key", "custom-header"}},
			[]field{{"custom-key", "custom-header"}}, 55}},
		{"C.2.2 literal without indexing", step{
			"040c 2f73 616d 706c 652f 7061 7468",
			[]field{{":path", "/sample/path"}}, nil, 0}},
		{"C.2.3 literal never indexed", step{
			"1008 7061 7373 776f 7264 0673 6563 7265 74",
			[]field{{"password", "secret"}}, nil, 0}},
		{"C.2.4 indexed", step{"82", []field{{":method", "GET"}}, nil, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, newDecoder(), []step{tc.step}) })
	}
}

var (
	c3fields1 = []field{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "www.example.com"}}
	c3fields2 = append(c3fields1[:4:4], field{"cache-control", "no-cache"})
	c3fields3 = []field{{":method", "GET"}, {":scheme", "https"}, {":path", "/index.html"},
		{":authority", "www.example.com"}, {"custom-key", "custom-value"}}
	c3table1 = []field{{":authority", "www.example.com"}}
	c3table2 = []field{{"cache-control", "no-cache"}, {":authority", "www.example.com"}}
	c3table3 = []field{{"custom-key", "custom-value"}, {"cache-control", "no-cache"}, {":authority", "www.example.com"}}
)

// C.3: three requests on one connection, without Huffman coding.
func TestRFC7541C3(t *testing.T) {
	runSteps(t, newDecoder(), []step{
		{"8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", c3fields1, c3table1, 57},
		{"8286 84be 5808 6e6f 2d63 6163 6865", c3fields2, c3table2, 110},
		{"8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", c3fields3, c3table3, 164},
	})
}

// C.4: the same requests with Huffman coding.
func TestRFC7541C4(t *testing.T) {
	runSteps(t, newDecoder(), []step{
		{"8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", c3fields1, c3table1, 57},
		{"8286 84be 5886 a8eb 1064 9cbf", c3fields2, c3table2, 110},
		{"8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", c3fields3, c3table3, 164},
	})
}

var (
	c5date1   = "Mon, 21 Oct 2013 20:13:21 GMT"
	c5date2   = "Mon, 21 Oct 2013 20:13:22 GMT"
	c5loc     = "https://www.example.com"
	c5cookie  = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
	c5fields1 = []field{{":status", "302"}, {"cache-control", "private"}, {"date", c5date1}, {"location", c5loc}}
	c5fields2 = []field{{":status", "307"}, {"cache-control", "private"}, {"date", c5date1}, {"location", c5loc}}
	c5fields3 = []field{{":status", "200"}, {"cache-control", "private"}, {"date", c5date2}, {"location", c5loc},
		{"content-encoding", "gzip"}, {"set-cookie", c5cookie}}
	c5table1 = []field{{"location", c5loc}, {"date", c5date1}, {"cache-control", "private"}, {":status", "302"}}
	c5table2 = []field{{":status", "307"}, {"location", c5loc}, {"date", c5date1}, {"cache-control", "private"}}
	c5table3 = []field{{"set-cookie", c5cookie}, {"content-encoding", "gzip"}, {"date", c5date2}}
)

// responseDecoder is a decoder whose encoder's table holds 256 bytes, as
// in C.5 and C.6 (SETTINGS_HEADER_TABLE_SIZE 256 from the start).
func responseDecoder() *Decoder {
	d := newDecoder()
	d.t.maxSize, d.t.limit = 256, 256
	return d
}

// C.5: three responses with evictions, without Huffman coding.
func TestRFC7541C5(t *testing.T) {
	runSteps(t, responseDecoder(), []step{
		{`4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
		  2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
		  6c65 2e63 6f6d`, c5fields1, c5table1, 222},
		{"4803 3330 37c1 c0bf", c5fields2, c5table2, 222},
		{`88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
		  54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
		  5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
		  3d31`, c5fields3, c5table3, 215},
	})
}

// C.6: the same responses with Huffman coding.
func TestRFC7541C6(t *testing.T) {
	runSteps(t, responseDecoder(), []step{
		{`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
		  2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`, c5fields1, c5table1, 222},
		{"4883 640e ffc1 c0bf", c5fields2, c5table2, 222},
		{`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
		  77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
		  9587 3160 65c0 03ed 4ee5 b106 3d50 07`, c5fields3, c5table3, 215},
	})
}

// TestHuffmanEverySymbol decodes every byte value as x/net's encoder codes
// it, alone and in runs, which checks the code table symbol by symbol.
func TestHuffmanEverySymbol(t *testing.T) {
	for s := range 256 {
		for _, n := range []int{1, 2, 3, 7, 8, 13} {
			want := bytes.Repeat([]byte{byte(s)}, n)
			enc := xhpack.AppendHuffmanString(nil, string(want))
			got, total, err := appendHuffman(nil, enc, MaxString)
			if err != nil || !bytes.Equal(got, want) || total != n {
				t.Fatalf("symbol %d x%d: got %q (%d), %v", s, n, got, total, err)
			}
		}
	}
	all := make([]byte, 0, 512)
	for s := range 256 {
		all = append(all, byte(s), byte(255-s))
	}
	got, _, err := appendHuffman(nil, xhpack.AppendHuffmanString(nil, string(all)), MaxString)
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("all symbols: %v", err)
	}
}

func TestHuffmanErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		err  error
	}{
		{"EOS inside", []byte{0xff, 0xff, 0xff, 0xff}, errHuffmanEOS},
		{"padding of 8 bits", append(xhpack.AppendHuffmanString(nil, "a"), 0xff), errHuffmanPadding},
		{"padding not ones", []byte{0x00}, errHuffmanPadding}, // "0" (5 bits) then 000
	} {
		if _, _, err := appendHuffman(nil, tc.in, MaxString); err != tc.err {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	// A string longer than the limit keeps limit bytes and counts them all.
	enc := xhpack.AppendHuffmanString(nil, strings.Repeat("ab", 50))
	got, n, err := appendHuffman(nil, enc, 10)
	if err != nil || string(got) != "ababababab" || n != 100 {
		t.Fatalf("limited: %q %d %v", got, n, err)
	}
}

// TestStaticTable checks each static entry against x/net's encoder, which
// codes an exact match as its index.
func TestStaticTable(t *testing.T) {
	for i, e := range staticTable {
		if e.value == "" {
			continue // x/net indexes the name only, with a literal value
		}
		var buf bytes.Buffer
		enc := xhpack.NewEncoder(&buf)
		if err := enc.WriteField(xhpack.HeaderField{Name: e.name, Value: e.value}); err != nil {
			t.Fatal(err)
		}
		if got := buf.Bytes(); len(got) != 1 || got[0] != 0x80|byte(i+1) {
			t.Errorf("%s: %s encodes as %x, want index %d", e.name, e.value, got, i+1)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct{ name, block string }{
		{"index 0", "80"},
		{"index past the table", "be"},
		{"truncated integer", "7f"},
		{"integer over 32 bits", "7f ff ff ff ff 0f"},
		{"string past the block", "40 05 61"},
		{"size update after a field", "82 20"},
		{"size update over the limit", "3f e2 1f"}, // 4097
		{"huffman EOS", "40 84 ff ff ff ff 00"},
	} {
		d := newDecoder()
		if err := d.Decode(dehex(t, tc.block), &collect{}); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else if d.Complete() {
			t.Errorf("%s: table still complete after %v", tc.name, err)
		}
	}
}

// encoderPair is an x/net encoder and the decoder under test, fed the same
// blocks.
type encoderPair struct {
	buf bytes.Buffer
	enc *xhpack.Encoder
	dec *Decoder
}

func newPair() *encoderPair {
	p := &encoderPair{dec: newDecoder()}
	p.enc = xhpack.NewEncoder(&p.buf)
	return p
}

func (p *encoderPair) block(t testing.TB, fields ...field) []byte {
	t.Helper()
	p.buf.Reset()
	for _, f := range fields {
		if err := p.enc.WriteField(xhpack.HeaderField{Name: f.name, Value: f.value}); err != nil {
			t.Fatal(err)
		}
	}
	return bytes.Clone(p.buf.Bytes())
}

func (p *encoderPair) decode(t testing.TB, block []byte) []field {
	t.Helper()
	var c collect
	if err := p.dec.Decode(block, &c); err != nil {
		t.Fatal(err)
	}
	return c.fields
}

// TestLostBlock: after a missed block, fields that refer to older entries
// are unknown, fields from the static table and literals are known, and a
// size update to 0 makes the table complete again.
func TestLostBlock(t *testing.T) {
	p := newPair()
	req := []field{{":method", "POST"}, {":path", "/pkg.Svc/A"}, {"content-type", "application/grpc"}}
	p.decode(t, p.block(t, req...))
	_ = p.block(t, append(req, field{"x-new", "1"})...) // missed
	p.dec.Lose()
	got := p.decode(t, p.block(t, field{":method", "POST"}, field{":path", "/pkg.Svc/B"},
		field{"content-type", "application/grpc"}, field{"x-new", "1"}))
	want := []field{{":method", "POST"}, {":path", "/pkg.Svc/B"}, unknown, unknown}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after a lost block: %v, want %v", got, want)
	}
	// /pkg.Svc/B was inserted after the loss: it is known from now on.
	got = p.decode(t, p.block(t, field{":path", "/pkg.Svc/B"}, field{":path", "/pkg.Svc/A"}))
	if want := []field{{":path", "/pkg.Svc/B"}, unknown}; !reflect.DeepEqual(got, want) {
		t.Fatalf("newer entry: %v, want %v", got, want)
	}
	if p.dec.Complete() {
		t.Fatal("complete with entries lost")
	}
	p.enc.SetMaxDynamicTableSize(0)
	p.enc.SetMaxDynamicTableSize(4096)
	got = p.decode(t, p.block(t, req...))
	if !reflect.DeepEqual(got, req) || !p.dec.Complete() {
		t.Fatalf("after a size update to 0: %v complete=%v", got, p.dec.Complete())
	}
}

// TestLostBlockFilled: entries inserted after a loss that fill the table
// push out every older one, so the table is complete again.
func TestLostBlockFilled(t *testing.T) {
	p := newPair()
	p.enc.SetMaxDynamicTableSize(256) // a known maximum, signalled in the next block
	p.decode(t, p.block(t, field{"a", "1"}))
	p.dec.Lose()
	p.block(t, field{"b", "2"}) // missed: its size update too
	p.enc.SetMaxDynamicTableSize(200)
	p.decode(t, p.block(t, field{"c", strings.Repeat("c", 100)}))
	if p.dec.Complete() {
		t.Fatal("complete with room left for lost entries")
	}
	p.decode(t, p.block(t, field{"d", strings.Repeat("d", 34)})) // 133+67 = 200
	if !p.dec.Complete() {
		t.Fatalf("not complete with a full table (size %d of %d)", p.dec.t.size, p.dec.t.maxSize)
	}
}

// TestTableSizeBomb: a peer that announces and uses a huge table costs at
// most HardCap bytes; its oldest entries are then unknown, never wrong.
func TestTableSizeBomb(t *testing.T) {
	p := newPair()
	p.dec.SetLimit(1 << 30)
	p.enc.SetMaxDynamicTableSizeLimit(1 << 30)
	p.enc.SetMaxDynamicTableSize(1 << 30)
	big := strings.Repeat("x", 1000)
	var sent []field
	for i := range 200 {
		f := field{fmt.Sprintf("h%d", i), big}
		sent = append(sent, f)
		if got := p.decode(t, p.block(t, f)); !reflect.DeepEqual(got, []field{f}) {
			t.Fatalf("field %d: %v", i, got)
		}
		if n := len(p.dec.t.data); n > 2*HardCap+2000 {
			t.Fatalf("table holds %d bytes", n)
		}
	}
	// The newest entries are known, the oldest are unknown.
	got := p.decode(t, p.block(t, sent[199], sent[0]))
	if want := []field{sent[199], unknown}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// One entry larger than the hard cap holds its place without its bytes.
	huge := field{"huge", strings.Repeat("y", HardCap+10)}
	if got := p.decode(t, p.block(t, huge)); !reflect.DeepEqual(got, []field{unknown}) {
		t.Fatalf("huge field: %v", got)
	}
	got = p.decode(t, p.block(t, sent[199], huge))
	if want := []field{sent[199], unknown}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after huge: %v, want %v", got, want)
	}
}

// TestRandomAgainstEncoder encodes random header lists with x/net's encoder,
// with table size changes, and decodes them; now and then a block is
// missed. Every field the decoder reports known must be the field sent.
func TestRandomAgainstEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{":method", ":path", ":authority", "content-type", "te", "user-agent", "grpc-timeout", "x-a", "x-b", "cookie"}
	for run := range 50 {
		p := newPair()
		p.dec.SetLimit(8192)
		p.enc.SetMaxDynamicTableSizeLimit(8192)
		lost := false
		for range 60 {
			switch r.IntN(12) {
			case 0:
				p.enc.SetMaxDynamicTableSize(uint32(r.IntN(8193)))
			case 1:
				p.enc.SetMaxDynamicTableSize(0)
			}
			var fs []field
			for range 1 + r.IntN(8) {
				fs = append(fs, field{names[r.IntN(len(names))], strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(300))})
			}
			block := p.block(t, fs...)
			if r.IntN(10) == 0 {
				p.dec.Lose() // missed
				lost = true
				continue
			}
			got := p.decode(t, block)
			if len(got) != len(fs) {
				t.Fatalf("run %d: %d fields, want %d", run, len(got), len(fs))
			}
			for i := range got {
				if got[i] != unknown && got[i] != fs[i] {
					t.Fatalf("run %d: field %d is %v, sent %v", run, i, got[i], fs[i])
				}
				if got[i] == unknown && !lost {
					t.Fatalf("run %d: field %d unknown without a loss", run, i)
				}
			}
			if p.dec.Complete() {
				lost = false
			}
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	p := newPair()
	blocks := [][]byte{
		p.block(t, field{":method", "POST"}, field{":scheme", "http"}, field{":path", "/pkg.Svc/Method"},
			field{":authority", "localhost:50051"}, field{"content-type", "application/grpc"}, field{"te", "trailers"}),
	}
	p.decode(t, blocks[0])
	again := p.block(t, field{":method", "POST"}, field{":scheme", "http"}, field{":path", "/pkg.Svc/Method"},
		field{":authority", "localhost:50051"}, field{"content-type", "application/grpc"}, field{"te", "trailers"})
	var h nop
	if n := testing.AllocsPerRun(100, func() {
		if err := p.dec.Decode(again, &h); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per block", n)
	}
}

type nop struct{}

func (nop) Field(_, _ []byte, _ bool) {}
func (nop) Unknown()                  {}

func BenchmarkDecodeFirstBlock(b *testing.B) {
	p := newPair()
	fs := []field{{":method", "POST"}, {":scheme", "http"}, {":path", "/pkg.Svc/Method"},
		{":authority", "localhost:50051"}, {"content-type", "application/grpc"}, {"user-agent", "grpc-go/1.85.0"}, {"te", "trailers"}}
	block := p.block(b, fs...)
	var h nop
	b.ReportAllocs()
	for b.Loop() {
		p.dec.Reset()
		if err := p.dec.Decode(block, &h); err != nil {
			b.Fatal(err)
		}
	}
}
