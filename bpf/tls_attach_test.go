package bpf

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const systemLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3"

// sslOffsets finds the SSL functions in a libssl by its exported symbols.
func sslOffsets(t *testing.T, path string) map[SSLFunc]uint64 {
	t.Helper()
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.DynamicSymbols()
	require.NoError(t, err)
	funcs := map[SSLFunc]uint64{}
	for fn, name := range SSLSymbols {
		for _, s := range syms {
			if s.Name != name || s.Value == 0 {
				continue
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= s.Value && s.Value < p.Vaddr+p.Filesz {
					funcs[fn] = s.Value - p.Vaddr + p.Off
				}
			}
		}
	}
	require.Contains(t, funcs, SSLRead)
	require.Contains(t, funcs, SSLWrite)
	return funcs
}

// uprobeLinks lists the uprobe links this process holds, by link id, with
// their fdinfo.
func uprobeLinks(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	fds, err := filepath.Glob("/proc/self/fdinfo/*")
	require.NoError(t, err)
	for _, f := range fds {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, []byte("probe_multi\n")) && !bytes.Contains(b, []byte("event_type:\tu")) {
			continue // uprobe_multi, uretprobe_multi; perf links of uprobes and uretprobes without them
		}
		for _, line := range strings.Split(string(b), "\n") {
			if id, ok := strings.CutPrefix(line, "link_id:\t"); ok {
				out[id] = string(b)
			}
		}
	}
	return out
}

// curl's plaintext comes from libssl's probes, on curl's connection, and
// the tracer leaves out the records of those calls; closing the probes
// leaves no link behind.
func TestOpenSSLPlaintext(t *testing.T) {
	requireRoot(t)
	for _, multi := range []bool{true, false} {
		t.Run(fmt.Sprintf("uprobe_multi=%v", multi), func(t *testing.T) { testOpenSSLPlaintext(t, multi) })
	}
}

func testOpenSSLPlaintext(t *testing.T, multi bool) {
	if _, err := os.Stat(systemLibssl); err != nil {
		t.Skip("no", systemLibssl)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("plaintext answer"))
	}))
	defer srv.Close()
	port := uint16(srv.Listener.Addr().(*net.TCPAddr).Port)

	tr, err := Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 22})
	require.NoError(t, err)
	defer tr.Close()
	tl, err := tr.loadTLS(multi)
	require.NoError(t, err)
	defer tl.Close()
	before := uprobeLinks(t)
	probes, err := tl.AttachOpenSSL(systemLibssl, sslOffsets(t, systemLibssl))
	require.NoError(t, err)
	added := len(uprobeLinks(t)) - len(before)
	if multi {
		assert.Equal(t, 2, added, "one uprobe_multi link for the entries, one for the returns")
	} else {
		assert.Equal(t, 2*6-1, added, "a link per probe: six entries, five returns")
	}

	// The shell is selected before it becomes curl: curl's calls are seen
	// from its first.
	cmd := exec.Command("sh", "-c", "read go; exec curl -sk --http1.1 https://127.0.0.1:"+fmt.Sprint(port)+"/secret/path")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var out bytes.Buffer
	cmd.Stdout = &out
	require.NoError(t, cmd.Start())
	require.NoError(t, tr.Select(uint32(cmd.Process.Pid)))
	io.WriteString(stdin, "go\n")
	require.NoError(t, cmd.Wait())
	require.Equal(t, "plaintext answer", out.String())

	var plain []Event
	var wire [][]byte
	recordsUntilQuiet(t, tr, func(raw []byte) {
		ev := header(raw)
		if ev.Pid != uint32(cmd.Process.Pid) || ev.Rport != port || (ev.Kind != EventRead && ev.Kind != EventWrite) {
			return
		}
		data := raw[HeaderSize : HeaderSize+int(ev.CapLen)]
		if ev.Flags&EventFlagTLS != 0 {
			plain = append(plain, ev)
			if ev.Kind == EventWrite {
				assert.True(t, bytes.HasPrefix(data, []byte("GET /secret/path HTTP/1.1\r\n")), "%q", data)
			}
			return
		}
		wire = append(wire, append([]byte(nil), data...))
	})
	require.GreaterOrEqual(t, len(plain), 2, "the request and the response, in plaintext")
	var kinds []uint8
	for _, ev := range plain {
		kinds = append(kinds, ev.Kind)
		assert.NotZero(t, ev.Sock)
		assert.Equal(t, plain[0].Sock, ev.Sock, "one connection")
		assert.Equal(t, uint8(2), ev.Family)
	}
	assert.Equal(t, EventWrite, kinds[0])
	assert.Contains(t, kinds, EventRead)
	// The records of probed calls are left out; what SSL_shutdown sends
	// (an alert) is not probed, and comes as it is.
	assert.LessOrEqual(t, len(wire), 1, "%x", wire)
	for _, w := range wire {
		assert.True(t, len(w) >= 5 && w[0] == 23 && w[1] == 3 && len(w) < 64, "%x", w)
	}
	c, err := tl.Counters()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, c.SentOpenSSL, uint64(2))
	assert.NotZero(t, c.SSLEntry)
	assert.Zero(t, c.Untied)

	require.NoError(t, probes.Close())
	assert.Equal(t, before, uprobeLinks(t), "no uprobe link left")
}
