package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Peers and helpers of the Kubernetes tests: pods made by hand, the way
// kubelet and a container runtime make them, without either.

func init() {
	peerRoles["pod-server"] = runPodServer
	peerRoles["wait-client"] = runWaitClient
	peerRoles["fleet-server"] = func() { runFleetServer(os.Getenv("E2E_ADDR")) }
}

// runPodServer finishes the pod it was started in, as the runtime does for
// a container (a private /run, the service account mounted at its path,
// /etc/hostname and the UTS hostname set to the pod's name), then serves
// as the Go server peer. It says "POD pid=<its pid in its pid namespace>
// hostname=<its hostname>" first, so the test can check the pod.
func runPodServer() {
	if err := dressPod(os.Getenv("E2E_POD_NAME"), os.Getenv("E2E_POD_NAMESPACE")); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	h, _ := os.Hostname()
	fmt.Printf("POD pid=%d hostname=%s\n", os.Getpid(), h)
	runServer(os.Getenv("E2E_ADDR"))
}

// serviceAccountDir is where kubelet mounts a pod's service account.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// dressPod makes the mounts and the hostname of a pod, in the mount and
// UTS namespaces of its own the process was started in. Mounts are made
// private first: nothing done here reaches the host.
func dressPod(name, namespace string) error {
	if name == "" || namespace == "" {
		return errors.New("E2E_POD_NAME and E2E_POD_NAMESPACE are required")
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"making mounts private", func() error { return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "") }},
		// A pod's /run is its own: the mount point of the service account
		// can be made there without touching the host's.
		{"mounting /run", func() error {
			return unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=755")
		}},
		{"making the service account's mount point", func() error { return os.MkdirAll(serviceAccountDir, 0o755) }},
		{"mounting the service account", func() error { return unix.Mount("tmpfs", serviceAccountDir, "tmpfs", 0, "size=64k") }},
		{"writing the namespace", func() error { return os.WriteFile(serviceAccountDir+"/namespace", []byte(namespace), 0o644) }},
		{"making the service account read-only", func() error {
			return unix.Mount("", serviceAccountDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		}},
		// kubelet writes each pod's hostname file and bind-mounts it.
		{"writing the hostname file", func() error { return os.WriteFile("/run/hostname", []byte(name+"\n"), 0o644) }},
		{"mounting /etc/hostname", func() error { return unix.Mount("/run/hostname", "/etc/hostname", "", unix.MS_BIND, "") }},
		{"setting the hostname", func() error { return unix.Sethostname([]byte(name)) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// runWaitClient sends E2E_REQUESTS requests "GET E2E_PREFIX/<i>" to
// E2E_TARGET once it reads a line on stdin (so a receiver can watch it
// from its first connect). It uses one keep-alive connection per port of
// E2E_LOCAL_PORTS ("18511,18512": connections from those ports, the same
// addresses in every network namespace), or E2E_CONCURRENCY connections
// from ports the kernel picks. It writes each request with one write and
// prints "DONE <responses> <statuses>", statuses as "code:count,...".
func runWaitClient() {
	target, prefix, n := os.Getenv("E2E_TARGET"), os.Getenv("E2E_PREFIX"), envInt("E2E_REQUESTS")
	var ports []int
	if s := os.Getenv("E2E_LOCAL_PORTS"); s != "" {
		for _, p := range strings.Split(s, ",") {
			port, err := strconv.Atoi(p)
			if err != nil {
				fmt.Println("ERROR", err)
				os.Exit(2)
			}
			ports = append(ports, port)
		}
	} else {
		ports = make([]int, envInt("E2E_CONCURRENCY"))
	}
	fmt.Println("READY", target)
	bufio.NewReader(os.Stdin).ReadString('\n')

	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	var (
		mu       sync.Mutex
		answered int
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	for _, port := range ports {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
		if port == 0 {
			d.LocalAddr = nil
		}
		conn, err := d.Dial("tcp", target)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			br := bufio.NewReader(conn)
			for i := range work {
				if _, err := fmt.Fprintf(conn, "GET %s/%d HTTP/1.1\r\nHost: %s\r\n\r\n", prefix, i, target); err != nil {
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				answered++
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var parts []string
	for code, count := range statuses {
		parts = append(parts, fmt.Sprintf("%d:%d", code, count))
	}
	fmt.Println("DONE", answered, strings.Join(parts, ","))
	os.Exit(0)
}

// waitClient is a started wait-client peer.
type waitClient struct {
	p     *peer
	stdin io.WriteCloser
}

// startWaitClient starts a wait-client in network namespace netns ("" for
// this one) with env added; it sends nothing until release.
func startWaitClient(t *testing.T, netns string, env ...string) waitClient {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	if netns != "" {
		cmd = exec.Command("ip", "netns", "exec", netns, os.Args[0]) // ip execs it: the pid stays
	}
	cmd.Env = append(append(os.Environ(), "E2E_ROLE=wait-client"), env...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	return waitClient{p: startReady(t, cmd), stdin: stdin}
}

// release lets the client send its requests.
func (c waitClient) release(t *testing.T) {
	t.Helper()
	_, err := fmt.Fprintln(c.stdin)
	require.NoError(t, err)
}

// done waits for the client's last line and returns the responses it got
// and their count by status code.
func (c waitClient) done(t *testing.T) (int, map[int]int) {
	t.Helper()
	line := c.p.readLine(t)
	f := strings.Fields(line)
	require.True(t, len(f) >= 2 && f[0] == "DONE", "client said %q", line)
	n, err := strconv.Atoi(f[1])
	require.NoError(t, err)
	statuses := map[int]int{}
	if len(f) == 3 {
		for _, kv := range strings.Split(f[2], ",") {
			k, v, _ := strings.Cut(kv, ":")
			code, _ := strconv.Atoi(k)
			count, _ := strconv.Atoi(v)
			statuses[code] = count
		}
	}
	return n, statuses
}

// runFleetServer answers /r/<i>: 500 for the requests fleetOutcome calls
// errors, 200 after fleetSlow for the slow ones, 200 at once for the rest.
func runFleetServer(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/r/{i}", func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.PathValue("i"))
		switch fleetOutcome(i) {
		case fleetError:
			w.WriteHeader(http.StatusInternalServerError)
		case fleetSlowOutcome:
			time.Sleep(fleetSlow)
			w.Write([]byte("slow"))
		default:
			w.Write([]byte("ok"))
		}
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	http.Serve(ln, mux)
}

// What the fleet server does with request i.
const (
	fleetFast = iota
	fleetError
	fleetSlowOutcome
)

// fleetSlow is how long a slow request takes: well above the gateway's
// latency threshold, which is well above what a fast request takes on a
// loaded machine.
const fleetSlow = 700 * time.Millisecond

func fleetOutcome(i int) int {
	switch i % 10 {
	case 3:
		return fleetError
	case 7:
		return fleetSlowOutcome
	}
	return fleetFast
}

// ---- Pods made by hand ----

// cgroupLayout is how kubelet names a pod's and a container's cgroups.
type cgroupLayout int

const (
	// systemdDriver: kubepods.slice/kubepods-besteffort.slice/
	// kubepods-besteffort-pod<uid, '_' for '-'>.slice/cri-containerd-<id>.scope
	systemdDriver cgroupLayout = iota
	// cgroupfsDriver: kubepods/besteffort/pod<uid>/<id>
	cgroupfsDriver
)

// handPod is a pod made by hand: a network namespace joined to this one
// by a veth pair, a cgroup laid out as kubelet does, and (for the process
// started in it) mount, UTS and PID namespaces of its own.
type handPod struct {
	name, namespace, uid, containerID string
	netns                             string
	hostAddr, podAddr                 string // the veth's two ends
	cgroup                            string // the container's cgroup directory
}

// podSeq tells apart the pods of one test run.
var podSeq int

// newHandPod makes the network namespace and the cgroup of a pod; they go
// when the test ends, whatever happened.
func newHandPod(t *testing.T, layout cgroupLayout, name, namespace string) *handPod {
	t.Helper()
	requireRoot(t)
	podSeq++
	id := os.Getpid()%10000*4 + podSeq%4
	p := &handPod{name: name, namespace: namespace, uid: newUUID(t), containerID: randomHex(t, 32),
		netns: fmt.Sprintf("pod-%d", id)}
	p.makeNetns(t, id)
	p.cgroup = makeCgroup(t, layout, p.uid, p.containerID)
	return p
}

// makeNetns makes the pod's network namespace and the veth that joins it
// to this one (10.233.x.y/30: pod at .2, host at .1).
func (p *handPod) makeNetns(t *testing.T, id int) {
	t.Helper()
	here, there := fmt.Sprintf("podh%d", id), fmt.Sprintf("podp%d", id)
	base := (id % 16000) * 4
	p.hostAddr = fmt.Sprintf("10.233.%d.%d", base/256%256, base%256+1)
	p.podAddr = fmt.Sprintf("10.233.%d.%d", base/256%256, base%256+2)
	ip := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	// Left over by a run that was killed: the names are this test's.
	exec.Command("ip", "link", "delete", here).Run()
	exec.Command("ip", "netns", "delete", p.netns).Run()
	ip("netns", "add", p.netns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "delete", here).Run()
		exec.Command("ip", "netns", "delete", p.netns).Run()
	})
	ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", p.netns)
	ip("addr", "add", p.hostAddr+"/30", "dev", here)
	ip("link", "set", here, "up")
	ip("-n", p.netns, "addr", "add", p.podAddr+"/30", "dev", there)
	ip("-n", p.netns, "link", "set", there, "up")
	ip("-n", p.netns, "link", "set", "lo", "up")
}

// newNetns makes a network namespace with only its loopback, up.
func newNetns(t *testing.T, name string) {
	t.Helper()
	requireRoot(t)
	exec.Command("ip", "netns", "delete", name).Run() // left over by a killed run
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	require.NoError(t, err, "ip netns add %s: %s", name, out)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	out, err = exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput()
	require.NoError(t, err, "lo up in %s: %s", name, out)
}

// cgroup2Root is where the cgroup v2 hierarchy is mounted
// (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one).
func cgroup2Root(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		// ... mount-point ... - fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if ok && len(f) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return f[4]
		}
	}
	t.Fatal("no cgroup v2 hierarchy is mounted: pods need one")
	return ""
}

// makeCgroup makes the cgroup directories of container id of pod uid, as
// kubelet lays them out, and returns the container's. Directories it made
// are removed when the test ends (once the processes in them are gone:
// register it before starting them).
func makeCgroup(t *testing.T, layout cgroupLayout, uid, id string) string {
	t.Helper()
	var parts []string
	switch layout {
	case systemdDriver:
		parts = []string{"kubepods.slice", "kubepods-besteffort.slice",
			"kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice", "cri-containerd-" + id + ".scope"}
	case cgroupfsDriver:
		parts = []string{"kubepods", "besteffort", "pod" + uid, id}
	}
	dir := cgroup2Root(t)
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			removeCgroup(t, made[i])
		}
	})
	for _, part := range parts {
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue // kubepods.slice may be another test's too
		}
		require.NoError(t, err, "making cgroup %s", dir)
		made = append(made, dir)
	}
	return dir
}

// removeCgroup removes an empty cgroup directory: a killed process leaves
// its cgroup a moment after it is reaped. One still in use by someone
// else (a shared parent) is left.
func removeCgroup(t *testing.T, dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			t.Logf("cgroup %s left: %v", dir, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServer starts the pod-server peer listening on addr in the pod:
// in the pod's network namespace (ip netns exec, which also gives it a
// mount namespace of its own), in new UTS and PID namespaces, and in the
// container's cgroup from its first instruction (clone3 into the cgroup),
// so that it is the pod's before anything can see it.
func (p *handPod) startServer(t *testing.T, addr string) *peer {
	t.Helper()
	cg, err := os.Open(p.cgroup)
	require.NoError(t, err)
	defer cg.Close()
	cmd := exec.Command("ip", "netns", "exec", p.netns, os.Args[0]) // ip execs it: the pid stays
	cmd.Env = append(os.Environ(), "E2E_ROLE=pod-server", "E2E_ADDR="+addr,
		"E2E_POD_NAME="+p.name, "E2E_POD_NAMESPACE="+p.namespace)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWPID,
		UseCgroupFD: true,
		CgroupFD:    int(cg.Fd()),
		Setpgid:     true,
	}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		// SIGKILL from outside the pod's PID namespace ends its init,
		// and with it everything in the pod.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	srv := &peer{cmd: cmd, out: bufio.NewReader(stdout)}
	pod := srv.readLine(t)
	require.Equal(t, fmt.Sprintf("POD pid=1 hostname=%s", p.name), pod, "the server is pid 1 of its own PID namespace, named after the pod")
	line := srv.readLine(t)
	require.True(t, strings.HasPrefix(line, "READY "), "pod server said %q", line)
	srv.addr = strings.TrimPrefix(line, "READY ")
	return srv
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func newUUID(t *testing.T) string {
	h := randomHex(t, 16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}
