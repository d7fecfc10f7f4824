package dbservers

import (
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

// MariaDBPorts are the loopback ports StartMariaDB may listen on: it takes
// the first one that is free.
var MariaDBPorts = []int{23306, 23307, 23308, 23309}

// The database and the account StartMariaDB creates for tests. The account
// authenticates with mysql_native_password, which every client here speaks
// without TLS.
const (
	MariaDBDatabase = "otel"
	MariaDBUser     = "otel"
	MariaDBPassword = "otel-pw"
)

// MariaDB is a running MariaDB server.
type MariaDB struct {
	Port   int    // TCP port on 127.0.0.1
	Socket string // its Unix socket, for the root account
	Dir    string // data directory

	cmd  *exec.Cmd
	done chan struct{} // closed when the server exited
	err  error         // how it exited, valid after done
	log  string        // its error log
}

// StartMariaDB installs a fresh data directory, starts mariadbd on the
// first free port of MariaDBPorts with it, creates MariaDBDatabase and the
// MariaDBUser account, and stops the server when the test ends. The test
// fails with a message that says what to install when the binaries are
// missing.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	bins, err := mariaDBBinaries()
	if err != nil {
		t.Fatal(err)
	}
	port, err := mariaDBFreePort(MariaDBPorts)
	if err != nil {
		t.Fatal(err)
	}
	// A Unix socket path must fit in 108 bytes, which a test's TempDir
	// may not: the socket lives in a short directory of its own.
	sockDir, err := os.MkdirTemp("", "mariadb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	m := &MariaDB{
		Port:   port,
		Socket: filepath.Join(sockDir, "sock"),
		Dir:    filepath.Join(t.TempDir(), "data"),
		done:   make(chan struct{}),
	}
	m.log = filepath.Join(filepath.Dir(m.Dir), "error.log")
	if err := m.install(bins.install); err != nil {
		t.Fatal(err)
	}
	if err := m.start(bins.server); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.stop(); err != nil {
			t.Errorf("stopping MariaDB: %v", err)
		}
	})
	if err := m.wait(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.setUp(); err != nil {
		t.Fatal(err)
	}
	return m
}

// Pid is the process id of the server, mariadbd.
func (m *MariaDB) Pid() int { return m.cmd.Process.Pid }

// DSN is a go-sql-driver/mysql data source name for MariaDBUser on the
// database db ("" for none).
func (m *MariaDB) DSN(db string) string {
	return fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s", MariaDBUser, MariaDBPassword, m.Port, db)
}

// Client returns the mariadb command-line client, connected over TCP as
// MariaDBUser without TLS, with args after the connection options.
func (m *MariaDB) Client(args ...string) *exec.Cmd {
	base := []string{"--no-defaults", "--protocol=TCP", "--host=127.0.0.1",
		"--port=" + strconv.Itoa(m.Port), "--user=" + MariaDBUser, "--password=" + MariaDBPassword, "--skip-ssl"}
	return exec.Command("mariadb", append(base, args...)...)
}

// rootSQL runs statements as root over the Unix socket.
func (m *MariaDB) rootSQL(sql string) error {
	cmd := exec.Command("mariadb", "--no-defaults", "--user=root", "--socket="+m.Socket, "--batch", "-e", sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb as root: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

type mariaDBBins struct{ install, server string }

// mariaDBBinaries finds the programs of the mariadb-server package.
func mariaDBBinaries() (mariaDBBins, error) {
	var b mariaDBBins
	var missing []string
	for _, p := range []struct {
		dst  *string
		name string
	}{{&b.install, "mariadb-install-db"}, {&b.server, "mariadbd"}, {new(string), "mariadb"}} {
		path, err := exec.LookPath(p.name)
		if err != nil {
			// mariadbd is in /usr/sbin, which a test's PATH may lack.
			if _, serr := os.Stat("/usr/sbin/" + p.name); serr == nil {
				path, err = "/usr/sbin/"+p.name, nil
			}
		}
		if err != nil {
			missing = append(missing, p.name)
			continue
		}
		*p.dst = path
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("MariaDB programs %v not found: install them with `apt-get install mariadb-server mariadb-client`", missing)
	}
	return b, nil
}

// mariaDBFreePort returns the first port of ports nothing listens on.
func mariaDBFreePort(ports []int) (int, error) {
	for _, p := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port among %v for MariaDB", ports)
}

// install makes the system tables in a fresh data directory.
func (m *MariaDB) install(bin string) error {
	cmd := exec.Command(bin, "--no-defaults", "--datadir="+m.Dir, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s --datadir=%s: %v: %s", bin, m.Dir, err, mariaDBLastLines(out, 20))
	}
	return nil
}

// start runs the server in the background.
func (m *MariaDB) start(bin string) error {
	m.cmd = exec.Command(bin, "--no-defaults", "--datadir="+m.Dir, "--user=root",
		"--port="+strconv.Itoa(m.Port), "--bind-address=127.0.0.1", "--socket="+m.Socket,
		"--pid-file="+filepath.Join(filepath.Dir(m.Socket), "pid"), "--log-error="+m.log,
		"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M", "--local-infile=1")
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	return nil
}

// wait waits until the server answers on its socket.
func (m *MariaDB) wait(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		select {
		case <-m.done:
			return fmt.Errorf("mariadbd exited at start (%v): %s", m.err, m.logTail())
		case <-ctx.Done():
			return fmt.Errorf("mariadbd did not accept connections in %v: %s", limit, m.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if m.rootSQL("SELECT 1") == nil {
			return nil
		}
	}
}

// setUp creates the tests' database and account.
func (m *MariaDB) setUp() error {
	q := fmt.Sprintf("CREATE DATABASE %[1]s;", MariaDBDatabase)
	// 127.0.0.1 as well as %: an account for a host, if any, would win
	// over the wildcard.
	for _, host := range []string{"%", "127.0.0.1", "localhost"} {
		q += fmt.Sprintf(" CREATE USER '%[1]s'@'%[2]s' IDENTIFIED VIA mysql_native_password USING PASSWORD('%[3]s');"+
			" GRANT ALL ON *.* TO '%[1]s'@'%[2]s';", MariaDBUser, host, MariaDBPassword)
	}
	if err := m.rootSQL(q); err != nil {
		return fmt.Errorf("creating the test database and account: %w", err)
	}
	return nil
}

// stop ends the server: SIGTERM, then SIGKILL if it does not exit.
func (m *MariaDB) stop() error {
	select {
	case <-m.done:
		return nil // already gone
	default:
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling mariadbd: %w", err)
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
		return fmt.Errorf("mariadbd did not stop in 30 s after SIGTERM; killed")
	}
}

func (m *MariaDB) logTail() string {
	b, _ := os.ReadFile(m.log)
	return mariaDBLastLines(b, 20)
}

// mariaDBLastLines returns the last n lines of b.
func mariaDBLastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
