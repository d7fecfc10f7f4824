package hpack

import (
	"bytes"
	"reflect"
	"testing"

	xhpack "golang.org/x/net/http2/hpack"
)

// FuzzDecoder decodes arbitrary header blocks, in sequence on one table,
// with x/net's decoder beside it: whenever both decode a block, they must
// give the same fields. Now and then a block is lost (the decoder is told,
// x/net's is not fed it): fields the decoder then reports known must still
// be x/net's. Memory stays bounded.
func FuzzDecoder(f *testing.F) {
	p := newPair()
	var seq []byte
	for _, fs := range [][]field{
		{{":method", "GET"}, {":path", "/"}, {"x-long", string(bytes.Repeat([]byte("v"), 300))}},
		{{":method", "GET"}, {":path", "/"}, {"cookie", "a=b"}},
	} {
		b := p.block(f, fs...)
		seq = append(seq, byte(len(b)>>8), byte(len(b)))
		seq = append(seq, b...)
	}
	f.Add(seq, uint16(4096), byte(0))
	f.Add(dehex(f, "00 02 3f e1 1f 00 01 82"), uint16(8192), byte(1))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16, lose byte) {
		if len(in) > 8192 {
			return
		}
		d := newDecoder()
		d.SetLimit(uint32(limit))
		x := xhpack.NewDecoder(DefaultTableSize, nil)
		x.SetAllowedMaxDynamicTableSize(uint32(max(limit, DefaultTableSize)))
		lost := false
		for i := 0; len(in) >= 2; i++ {
			n := int(in[0])<<8 | int(in[1])
			in = in[2:]
			block := in[:min(n, len(in))]
			in = in[len(block):]
			if lose != 0 && i%int(lose) == int(lose)-1 {
				d.Lose()
				lost = true
				continue
			}
			var c collect
			err := d.Decode(block, &c)
			want, xerr := x.DecodeFull(block)
			if d.Memory() > 4*HardCap+MaxString {
				t.Fatalf("decoder holds %d bytes", d.Memory())
			}
			if err != nil || xerr != nil {
				if xerr != nil {
					return // x/net's table is now unknown too
				}
				continue
			}
			if len(want) != len(c.fields) {
				if lost {
					continue
				}
				t.Fatalf("%d fields, x/net %d", len(c.fields), len(want))
			}
			for j, w := range want {
				g := c.fields[j]
				if g == unknown && lost {
					continue
				}
				if !reflect.DeepEqual(g, field{w.Name, w.Value}) {
					t.Fatalf("field %d: %v, x/net %v (lost %v)", j, g, w, lost)
				}
			}
			if d.Complete() {
				lost = false
			}
		}
	})
}
