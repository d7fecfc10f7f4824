package http1

// chunkState is where a chunked body decoder is within its framing.
type chunkState uint8

const (
	csSize        chunkState = iota // first hex digit of a chunk size
	csSizeMore                      // more digits, an extension, or CR
	csExt                           // chunk extension: skipped up to CR
	csSizeLF                        // LF ending the size line
	csData                          // chunk data; stream.left bytes to go
	csDataCR                        // CR after the data
	csDataLF                        // LF after the data
	csTrailer                       // start of a trailer line, or of the final CRLF
	csTrailerLine                   // inside a trailer field: skipped up to LF
	csEndLF                         // LF of the final CRLF
)

// maxHexDigits keeps a chunk size within int64.
const maxHexDigits = 15

// chunked decodes chunked framing, counting data without looking at it.
// A framing error sends the stream to look for the end of the body the
// way it does after a gap.
func (c *Conn) chunked(s *stream, d []byte, ts uint64) []byte {
	s.last = ts
	for i := 0; i < len(d); {
		if s.cs == csData {
			n := min(int64(len(d)-i), s.left)
			s.left -= n
			s.body += n
			i += int(n)
			if s.left == 0 {
				s.cs = csDataCR
			}
			continue
		}
		b := d[i]
		i++
		if !s.chunkByte(b) {
			c.guesses++
			s.st, s.wl = stChunkLost, 0
			return d[i-1:]
		}
		if s.cs == csDone {
			c.msgDone(s, ts)
			return d[i:]
		}
	}
	return nil
}

// csDone marks a chunked body that just ended.
const csDone chunkState = 0xff

// chunkByte takes one framing byte; it reports false on a framing error.
func (s *stream) chunkByte(b byte) bool {
	switch s.cs {
	case csSize, csSizeMore:
		if v, ok := unhex(b); ok {
			if s.hex == maxHexDigits {
				return false
			}
			s.left = s.left<<4 | int64(v)
			s.hex++
			s.cs = csSizeMore
			return true
		}
		if s.cs == csSize {
			return false
		}
		switch b {
		case ';', ' ', '\t':
			s.cs = csExt
		case '\r':
			s.cs = csSizeLF
		default:
			return false
		}
	case csExt:
		switch b {
		case '\r':
			s.cs = csSizeLF
		case '\n':
			return false
		}
	case csSizeLF:
		if b != '\n' {
			return false
		}
		s.hex = 0
		s.cs = csData
		if s.left == 0 {
			s.cs = csTrailer
		}
	case csDataCR:
		s.cs = csDataLF
		return b == '\r'
	case csDataLF:
		s.cs = csSize
		return b == '\n'
	case csTrailer:
		switch b {
		case '\r':
			s.cs = csEndLF
		case '\n':
			return false
		default:
			s.cs = csTrailerLine
		}
	case csTrailerLine:
		if b == '\n' {
			s.cs = csTrailer
		}
	case csEndLF:
		s.cs = csDone
		return b == '\n'
	}
	return true
}

// unhex returns the value of a hex digit.
func unhex(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}
