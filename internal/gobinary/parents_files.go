package gobinary

import (
	"bytes"
	"errors"
	"io"
)

// ModuleVersion finds the version of module the binary was built with in
// the names of its source files, which the pclntab keeps also in
// stripped binaries: code built from the module cache (or with
// -trimpath) names its module's version in its path
// ("google.golang.org/grpc@v1.85.0/internal/transport/http2_client.go").
// It tells a dependency's release where the build information does not
// list it (test binaries). ok is false when no file names the module
// (vendored code, a replaced module).
func (b *Binary) ModuleVersion(module string) (version string, ok bool, err error) {
	sec := b.elf.Section(".gopclntab")
	if sec == nil {
		return "", false, errors.New("no .gopclntab section")
	}
	want := []byte(module + "@v")
	const chunk = 1 << 20
	r := sec.Open()
	buf := make([]byte, chunk+len(want)+64)
	carry := 0
	for {
		n, err := io.ReadFull(r, buf[carry:])
		data := buf[:carry+n]
		if i := bytes.Index(data, want); i >= 0 && i+len(want)+32 <= len(data) || i >= 0 && err != nil {
			rest := data[i+len(want)-1:]
			end := bytes.IndexAny(rest, "/\x00")
			if end < 0 {
				return "", false, nil
			}
			return string(rest[:end]), true, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return "", false, nil
			}
			return "", false, err
		}
		// Keep the end: a name may cross the chunk's edge.
		carry = copy(buf, data[len(data)-len(want)-64:])
	}
}
