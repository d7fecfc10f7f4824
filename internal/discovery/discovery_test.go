package discovery

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePorts(t *testing.T) {
	p, err := ParsePorts(" 80, 443 ,8000-8002")
	require.NoError(t, err)
	var got []uint16
	p.Each(func(port uint16) { got = append(got, port) })
	assert.Equal(t, []uint16{80, 443, 8000, 8001, 8002}, got)
	assert.True(t, p.Contains(8001))
	assert.False(t, p.Contains(8003))
	assert.False(t, p.Empty())

	empty, err := ParsePorts("")
	require.NoError(t, err)
	assert.True(t, empty.Empty())
	assert.False(t, empty.Contains(80))

	all, err := ParsePorts("1-65535")
	require.NoError(t, err)
	assert.True(t, all.Contains(65535))

	_, err = ParsePorts("abc,0,70000,9000-8000,1-,-5,,80")
	require.Error(t, err)
	for _, want := range []string{`port "abc": not a number`, `port "0": ports are 1 to 65535`, `port "70000"`,
		`port range "9000-8000": ends before it starts`, `port range "1-"`, `port "-5"`, "empty item"} {
		assert.Contains(t, err.Error(), want)
	}
}

// fakeProc builds a /proc tree with the given processes and sockets.
type fakeProc struct{ root string }

func newFakeProc(t *testing.T) *fakeProc {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "net"), 0o755))
	header := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	require.NoError(t, os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(header), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "net", "tcp6"), []byte(header), 0o644))
	return &fakeProc{root}
}

func (f *fakeProc) process(t *testing.T, pid int, exe, comm string, start int, env string, sockets ...int) {
	dir := filepath.Join(f.root, fmt.Sprint(pid))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
	stat := fmt.Sprintf("%d (%s) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 10", pid, comm, start)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "environ"), []byte(env), 0o644))
	if exe != "" {
		require.NoError(t, os.Symlink(exe, filepath.Join(dir, "exe")))
	}
	for i, ino := range sockets {
		require.NoError(t, os.Symlink(fmt.Sprintf("socket:[%d]", ino), filepath.Join(dir, "fd", fmt.Sprint(i+3))))
	}
}

func (f *fakeProc) listen(t *testing.T, file string, port, inode int, state string) {
	path := filepath.Join(f.root, "net", file)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	addr := "0100007F"
	if file == "tcp6" {
		addr = "00000000000000000000000001000000"
	}
	line := fmt.Sprintf("   0: %s:%04X 00000000:0000 %s 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n", addr, port, state, inode)
	require.NoError(t, os.WriteFile(path, append(b, line...), 0o644))
}

// inNetns gives process pid a network namespace of its own, listing
// sockets of its own: as /proc/PID/ns/net and /proc/PID/net show it.
func (f *fakeProc) inNetns(t *testing.T, pid int, ns string, port, inode int) {
	dir := filepath.Join(f.root, fmt.Sprint(pid))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "ns"), 0o755))
	require.NoError(t, os.Symlink("net:["+ns+"]", filepath.Join(dir, "ns", "net")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "net"), 0o755))
	header := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	line := fmt.Sprintf("   0: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n", port, inode)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "net", "tcp"), []byte(header+line), 0o644))
}

// Listeners are found in every network namespace: two pods listening on
// the same port, and a process of the host's namespace.
func TestScanEveryNetworkNamespace(t *testing.T) {
	f := newFakeProc(t)
	f.process(t, 100, "/usr/bin/host-app", "host-app", 1, "", 7001)
	f.inNetns(t, 100, "4026531840", 8080, 7001)
	f.process(t, 200, "/app/pod-a", "pod-a", 2, "", 7002)
	f.inNetns(t, 200, "4026532001", 8080, 7002)
	f.process(t, 300, "/app/pod-b", "pod-b", 3, "", 7003)
	f.inNetns(t, 300, "4026532002", 8080, 7003)
	f.process(t, 301, "/app/pod-b-sidecar", "sidecar", 4, "") // same namespace, no listener
	f.inNetns(t, 301, "4026532002", 8080, 7003)               // the same namespace lists the same sockets
	ports, err := ParsePorts("8080")
	require.NoError(t, err)
	got, err := NewScanner(f.root, Criteria{Ports: ports}).Scan()
	require.NoError(t, err)
	assert.ElementsMatch(t, []int{100, 200, 300}, pidsOf(got))
}

func pidsOf(m map[int]Process) []int {
	var pids []int
	for pid := range m {
		pids = append(pids, pid)
	}
	return pids
}

func TestDescribe(t *testing.T) {
	f := newFakeProc(t)
	f.process(t, 10, "/usr/sbin/nginx (deleted)", "nginx", 555, "PATH=/bin\x00OTEL_SERVICE_NAME=front\x00")
	f.process(t, 11, "", "my (odd) name", 777, "OTEL_SERVICE_NAME=\x00")
	p, err := Describe(f.root, 10)
	require.NoError(t, err)
	assert.Equal(t, Process{Pid: 10, ExePath: "/usr/sbin/nginx", ExeName: "nginx", ServiceName: "front", ServiceNamed: true, StartTime: 555}, p)
	p, err = Describe(f.root, 11)
	require.NoError(t, err)
	assert.Equal(t, Process{Pid: 11, ExeName: "my (odd) name", ServiceName: "my (odd) name", StartTime: 777}, p)
	_, err = Describe(f.root, 12)
	assert.Error(t, err)
}

// A containerised process's executable is the path inside its root.
func TestDescribeInsideItsRoot(t *testing.T) {
	f := newFakeProc(t)
	rootfs := "/run/containerd/io.containerd.runtime.v2.task/k8s.io/0123/rootfs"
	f.process(t, 20, rootfs+"/usr/local/bin/api", "api", 1, "")
	require.NoError(t, os.Symlink(rootfs, filepath.Join(f.root, "20", "root")))
	f.process(t, 21, "/usr/bin/host-app", "host-app", 1, "")
	require.NoError(t, os.Symlink("/", filepath.Join(f.root, "21", "root")))
	p, err := Describe(f.root, 20)
	require.NoError(t, err)
	assert.Equal(t, "/usr/local/bin/api", p.ExePath)
	p, err = Describe(f.root, 21)
	require.NoError(t, err)
	assert.Equal(t, "/usr/bin/host-app", p.ExePath)
}

func TestScanSelectors(t *testing.T) {
	f := newFakeProc(t)
	f.process(t, 100, "/usr/bin/api", "api", 1, "", 5001)
	f.process(t, 200, "/usr/sbin/haproxy", "haproxy", 2, "", 5002)
	f.process(t, 300, "/usr/bin/idle", "idle", 3, "", 5003)
	f.process(t, 400, "/usr/bin/self", "self", 4, "", 5004)
	f.listen(t, "tcp", 8080, 5001, "0A")
	f.listen(t, "tcp6", 9000, 5002, "0A")
	f.listen(t, "tcp", 8081, 5004, "0A")
	f.listen(t, "tcp", 7000, 5003, "01") // established, not listening: after the listeners, as the kernel lists them

	ports, err := ParsePorts("8080-8081")
	require.NoError(t, err)
	tests := []struct {
		name string
		c    Criteria
		want []int
	}{
		{"ports", Criteria{Ports: ports, Exclude: 400}, []int{100}},
		{"exe", Criteria{Exe: regexp.MustCompile(`haproxy$`)}, []int{200}},
		{"pids", Criteria{Pids: []int{300, 999}}, []int{300}},
		{"or-ed", Criteria{Ports: ports, Pids: []int{300}}, []int{100, 300, 400}},
		{"no selector: every listener", Criteria{Exclude: 400}, []int{100, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewScanner(f.root, tt.c).Scan()
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.want, pidsOf(got))
		})
	}
}

func TestScanFindsNewListenerAndPidReuse(t *testing.T) {
	f := newFakeProc(t)
	s := NewScanner(f.root, Criteria{})
	got, err := s.Scan()
	require.NoError(t, err)
	assert.Empty(t, got)

	f.process(t, 100, "/usr/bin/a", "a", 1, "", 6001)
	f.listen(t, "tcp", 8080, 6001, "0A")
	got, err = s.Scan()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), got[100].StartTime)

	// The process exits and another one gets its pid.
	require.NoError(t, os.RemoveAll(filepath.Join(f.root, "100")))
	f.process(t, 100, "/usr/bin/b", "b", 9, "", 6001)
	got, err = s.Scan()
	require.NoError(t, err)
	assert.Equal(t, "b", got[100].ExeName)
	assert.Equal(t, uint64(9), got[100].StartTime)
}

func TestScanRealProc(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ports, err := ParsePorts(fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	require.NoError(t, err)

	got, err := NewScanner("/proc", Criteria{Ports: ports}).Scan()
	require.NoError(t, err)
	require.Contains(t, got, os.Getpid())
	exe, _ := os.Executable()
	assert.Equal(t, exe, got[os.Getpid()].ExePath)

	got, err = NewScanner("/proc", Criteria{Ports: ports, Exclude: os.Getpid()}).Scan()
	require.NoError(t, err)
	assert.NotContains(t, got, os.Getpid())
}

func BenchmarkScanListeners(b *testing.B) {
	s := NewScanner("/proc", Criteria{})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.Scan(); err != nil {
			b.Fatal(err)
		}
	}
}

// An exec keeps a process's pid and start time: what the scanner cached of
// its old program (its description, its executable's verdict) holds until
// it is told to forget it.
func TestScanForgetsAnExec(t *testing.T) {
	f := newFakeProc(t)
	f.process(t, 100, "/usr/bin/python3", "python3", 5, "")
	s := NewScanner(f.root, Criteria{Exe: regexp.MustCompile(`python3$`)})
	got, err := s.Scan()
	require.NoError(t, err)
	assert.Equal(t, []int{100}, pidsOf(got))

	require.NoError(t, os.RemoveAll(filepath.Join(f.root, "100")))
	f.process(t, 100, "/usr/bin/curl", "curl", 5, "") // the same start: an exec
	got, err = s.Scan()
	require.NoError(t, err)
	assert.Equal(t, "python3", got[100].ExeName, "cached: the scanner cannot tell an exec")

	s.Forget(100)
	got, err = s.Scan()
	require.NoError(t, err)
	assert.Empty(t, got, "read afresh: curl is not selected")
}
