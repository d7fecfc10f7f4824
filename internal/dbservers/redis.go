package dbservers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RedisPorts are the loopback ports StartRedis may listen on: it takes the
// first one that is free.
var RedisPorts = []int{26379, 26380, 26381, 26382}

// Redis is a running redis-server.
type Redis struct {
	Port int    // TCP port on 127.0.0.1
	Addr string // "127.0.0.1:<Port>"
	Dir  string // its working directory

	cli  string // path of redis-cli
	cmd  *exec.Cmd
	done chan struct{} // closed when the server exited
	err  error         // how it exited, valid after done
	log  string        // its log file
}

// StartRedis starts redis-server in the foreground on the first free port
// of RedisPorts, without persistence, with its working directory in a
// temporary directory, waits until it answers PING, and stops it when the
// test ends. The test fails with a message that says what to install when
// the programs are missing.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	server, cli, err := redisBinaries()
	if err != nil {
		t.Fatal(err)
	}
	port, err := redisFreePort(RedisPorts)
	if err != nil {
		t.Fatal(err)
	}
	r := &Redis{
		Port: port,
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:  t.TempDir(),
		cli:  cli,
		done: make(chan struct{}),
	}
	r.log = filepath.Join(r.Dir, "redis.log")
	if err := r.start(server); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stopping redis-server: %v", err)
		}
	})
	if err := r.wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	return r
}

// Pid is the process id of the server, redis-server.
func (r *Redis) Pid() int { return r.cmd.Process.Pid }

// CLI returns redis-cli connected to the server, with args after the
// connection options.
func (r *Redis) CLI(args ...string) *exec.Cmd {
	base := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.Port)}
	return exec.Command(r.cli, append(base, args...)...)
}

// redisBinaries finds redis-server and redis-cli.
func redisBinaries() (server, cli string, err error) {
	var missing []string
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		// The Debian package installs in /usr/bin; a test's PATH may
		// still lack it.
		for _, dir := range []string{"/usr/bin", "/usr/local/bin", "/usr/sbin"} {
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p
			}
		}
		missing = append(missing, name)
		return ""
	}
	server, cli = find("redis-server"), find("redis-cli")
	if len(missing) > 0 {
		return "", "", fmt.Errorf("Redis programs %v not found: install them with `apt-get install redis-server redis-tools`", missing)
	}
	return server, cli, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// redisFreePort returns the first port of ports nothing listens on.
func redisFreePort(ports []int) (int, error) {
	for _, p := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port among %v for Redis", ports)
}

// start runs the server in the foreground of a child process: it stays
// attached, so that stopping the test stops it.
func (r *Redis) start(bin string) error {
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.Dir, "--daemonize", "no",
		"--logfile", r.log, "--protected-mode", "no")
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	return nil
}

// wait waits until the server answers PING.
func (r *Redis) wait(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		if err := r.ping(); err == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("redis-server exited at start (%v): %s", r.err, r.logTail())
		case <-ctx.Done():
			return fmt.Errorf("redis-server did not answer PING on %s in %v: %s", r.Addr, limit, r.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping sends PING over TCP and checks for +PONG.
func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// stop ends the server: SIGTERM, then SIGKILL if it does not exit.
func (r *Redis) stop() error {
	select {
	case <-r.done:
		return nil // already gone
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling redis-server: %w", err)
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("redis-server did not stop in 20 s after SIGTERM; killed")
	}
}

func (r *Redis) logTail() string {
	b, _ := os.ReadFile(r.log)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
