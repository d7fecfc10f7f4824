package hpack

import "errors"

// The Huffman code of RFC 7541 Appendix B is canonical: codes of one
// length are consecutive and ordered by symbol, and each length's first
// code follows the last code of the shorter lengths. So the bit length of
// each symbol is all the table needs; the codes are derived from them.
var huffmanLengths = [257]uint8{
	13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
	28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
	6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32-47
	5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48-63
	13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64-79
	7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80-95
	15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96-111
	6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112-127
	20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
	24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
	22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
	21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
	26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
	19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
	20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
	26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
	30, // 256-256
}

const (
	eos          = 256 // the end-of-string symbol, never valid inside a string
	maxCodeLen   = 30
	primaryBits  = 9 // codes up to this long are found with one table look-up
	primaryTable = 1 << primaryBits
)

// huffman is the decoding state derived from huffmanLengths.
var huffman = buildHuffman()

type huffmanTables struct {
	// primary maps the next primaryBits bits to a symbol and its length,
	// for codes no longer than primaryBits; length 0 means a longer code.
	primary [primaryTable]struct {
		sym uint16
		len uint8
	}
	// For each length: the first code, the number of codes, and where
	// their symbols begin in sorted.
	first, count, offset [maxCodeLen + 1]uint32
	sorted               [257]uint16 // symbols by (length, symbol)
}

func buildHuffman() *huffmanTables {
	h := &huffmanTables{}
	for _, l := range huffmanLengths {
		h.count[l]++
	}
	code, off := uint32(0), uint32(0)
	for l := 1; l <= maxCodeLen; l++ {
		h.first[l], h.offset[l] = code, off
		code = (code + h.count[l]) << 1
		off += h.count[l]
	}
	var next [maxCodeLen + 1]uint32
	for sym, l := range huffmanLengths {
		i := h.offset[l] + next[l]
		h.sorted[i] = uint16(sym)
		c := h.first[l] + next[l]
		next[l]++
		if l <= primaryBits {
			// Every primary index that starts with this code decodes to it.
			shift := primaryBits - uint32(l)
			for j := uint32(0); j < 1<<shift; j++ {
				e := &h.primary[c<<shift|j]
				e.sym, e.len = uint16(sym), l
			}
		}
	}
	return h
}

// Errors of Huffman-coded strings (RFC 7541 5.2).
var (
	errHuffmanEOS     = errors.New("hpack: Huffman string contains EOS")
	errHuffmanPadding = errors.New("hpack: Huffman string padding is not a prefix of EOS or longer than 7 bits")
)

// decode looks up the symbol of the code at the top of the maxCodeLen
// bits in peek; it returns the symbol and its length.
func (h *huffmanTables) decode(peek uint32) (sym uint16, n uint8) {
	if e := h.primary[peek>>(maxCodeLen-primaryBits)]; e.len != 0 {
		return e.sym, e.len
	}
	for l := uint32(primaryBits + 1); l <= maxCodeLen; l++ {
		c := peek >> (maxCodeLen - l)
		if c-h.first[l] < h.count[l] {
			return h.sorted[h.offset[l]+c-h.first[l]], uint8(l)
		}
	}
	return eos, maxCodeLen // all ones: EOS
}

// appendHuffman appends the decoding of the Huffman-coded src to dst, as
// far as limit bytes of dst; n counts every byte src decodes to, kept or
// not, so that a string too long to keep still has its exact length.
func appendHuffman(dst, src []byte, limit int) (out []byte, n int, err error) {
	var acc uint64 // the next bits, in its low bits
	bits := uint(0)
	for {
		for bits <= 56 && len(src) > 0 {
			acc = acc<<8 | uint64(src[0])
			src = src[1:]
			bits += 8
		}
		if bits == 0 {
			return dst, n, nil
		}
		// The next 30 bits; past the end of the string, ones, as padding
		// is: a code that needs them is then the padding, not a symbol.
		var peek uint32
		if bits >= maxCodeLen {
			peek = uint32(acc>>(bits-maxCodeLen)) & (1<<maxCodeLen - 1)
		} else {
			pad := maxCodeLen - bits
			peek = uint32(acc<<pad|(1<<pad-1)) & (1<<maxCodeLen - 1)
		}
		sym, l := huffman.decode(peek)
		if uint(l) > bits {
			// Only padding is left: fewer than 8 bits, all ones.
			if bits > 7 || acc&(1<<bits-1) != 1<<bits-1 {
				return dst, n, errHuffmanPadding
			}
			return dst, n, nil
		}
		if sym == eos {
			return dst, n, errHuffmanEOS
		}
		if n < limit {
			dst = append(dst, byte(sym))
		}
		n++
		bits -= uint(l)
		acc &= 1<<bits - 1
	}
}
