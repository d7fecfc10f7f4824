package dbservers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PostgresPorts are the loopback ports StartPostgres may listen on: it
// takes the first one that is free.
var PostgresPorts = []int{25432, 25433, 25434, 25435}

// The database and the accounts StartPostgres creates for tests.
// PostgresUser's password is stored as a SCRAM-SHA-256 secret and
// PostgresMD5User's as an MD5 hash; pg_hba's md5 method then asks each for
// the kind its secret allows, so both exchanges can be seen.
const (
	PostgresDatabase    = "otel"
	PostgresUser        = "otel"
	PostgresPassword    = "otel-pw"
	PostgresMD5User     = "otel_md5"
	PostgresMD5Password = "otel-md5-pw"
	postgresSuperuser   = "postgres"
)

// Postgres is a running PostgreSQL server.
type Postgres struct {
	Port int    // TCP port on 127.0.0.1
	Dir  string // data directory; its parent holds the Unix socket and the log

	bin  string   // directory of initdb, postgres, pg_ctl, psql
	as   []string // the command prefix that runs a program as the server's owner
	cmd  *exec.Cmd
	done chan struct{} // closed when the server exited
	err  error         // how it exited, valid after done
	log  string
}

// StartPostgres makes a fresh cluster with initdb, starts postgres on the
// first free port of PostgresPorts, creates PostgresDatabase and the test
// accounts, and stops the server (pg_ctl stop -m fast) and removes its
// files when the test ends. The test fails with a message that says what to
// install when the binaries are missing.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	port, err := postgresFreePort(PostgresPorts)
	if err != nil {
		t.Fatal(err)
	}
	return StartPostgresOn(t, port)
}

// StartPostgresOn is StartPostgres on a port the caller chose.
func StartPostgresOn(t testing.TB, port int) *Postgres {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatal(err)
	}
	as, owner, err := postgresOwner()
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL refuses to run as root, so the files belong to the
	// postgres account, which cannot reach into a test's TempDir (0700,
	// root's): the cluster gets a directory of its own, short enough for
	// the socket path too.
	base, err := os.MkdirTemp("", "pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if owner != nil {
		if err := os.Chown(base, owner.uid, owner.gid); err != nil {
			t.Fatalf("giving %s to the postgres account: %v", base, err)
		}
	}
	p := &Postgres{
		Port: port, Dir: filepath.Join(base, "data"), bin: bin, as: as,
		done: make(chan struct{}), log: filepath.Join(base, "postgres.log"),
	}
	if err := p.initdb(); err != nil {
		t.Fatal(err)
	}
	if err := p.start(owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("stopping PostgreSQL: %v", err)
		}
	})
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.setUp(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Pid is the process id of the postmaster, which accepts connections
// and forks a backend process for each (the process that then reads and
// writes its bytes). It is not the process the test started when that
// is runuser.
func (p *Postgres) Pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.Dir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("reading the postmaster's pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	return pid, nil
}

// DSN is a libpq URL for PostgresUser on database db ("" for the user's
// default), without TLS. Callers may add parameters with "&".
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable",
		PostgresUser, PostgresPassword, p.Port, db)
}

// Psql returns psql connected over TCP to PostgresDatabase as
// PostgresUser, with args after the connection options. It reads no
// ~/.psqlrc, and libpq's default sslmode (prefer) is kept, so its
// connections begin with an SSLRequest that the server declines.
func (p *Postgres) Psql(args ...string) *exec.Cmd {
	base := []string{"-X", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", PostgresUser, "-d", PostgresDatabase}
	cmd := exec.Command(filepath.Join(p.bin, "psql"), append(base, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+PostgresPassword, "PGCONNECT_TIMEOUT=10")
	return cmd
}

// superSQL runs statements as the superuser over the Unix socket, on
// database db, each in a transaction of its own (CREATE DATABASE cannot
// share one).
func (p *Postgres) superSQL(db string, stmts ...string) error {
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", filepath.Dir(p.Dir),
		"-p", strconv.Itoa(p.Port), "-U", postgresSuperuser, "-d", db}
	for _, s := range stmts {
		args = append(args, "-c", s)
	}
	if out, err := p.run("psql", args...); err != nil {
		return fmt.Errorf("psql as %s: %v: %s", postgresSuperuser, err, bytes.TrimSpace(out))
	}
	return nil
}

// run runs one of the server's programs as the server's owner.
func (p *Postgres) run(prog string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, p.as...), filepath.Join(p.bin, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = filepath.Dir(p.Dir) // the owner may not enter the caller's directory
	return cmd.CombinedOutput()
}

// initdb makes the cluster. Local (socket) connections are trusted, for
// setting up; TCP ones need a password.
func (p *Postgres) initdb() error {
	out, err := p.run("initdb", "-D", p.Dir, "-U", postgresSuperuser, "--auth-local=trust",
		"--auth-host=md5", "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb -D %s: %v: %s", p.Dir, err, postgresLastLines(out, 20))
	}
	return nil
}

// start runs postgres in the background.
func (p *Postgres) start(owner *postgresAccount) error {
	logf, err := os.Create(p.log)
	if err != nil {
		return fmt.Errorf("creating the server log: %w", err)
	}
	if owner != nil {
		logf.Chown(owner.uid, owner.gid)
	}
	argv := append(append([]string{}, p.as...), filepath.Join(p.bin, "postgres"), "-D", p.Dir,
		"-p", strconv.Itoa(p.Port), "-k", filepath.Dir(p.Dir), "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=40")
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = filepath.Dir(p.Dir)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting postgres: %w", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return nil
}

// wait waits until the server answers queries on its socket.
func (p *Postgres) wait(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		select {
		case <-p.done:
			return fmt.Errorf("postgres exited at start (%v): %s", p.err, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections in %v: %s", limit, p.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if p.superSQL("postgres", "SELECT 1") == nil {
			return nil
		}
	}
}

// setUp creates the tests' accounts and database.
func (p *Postgres) setUp() error {
	err := p.superSQL("postgres",
		"SET password_encryption = 'scram-sha-256'; "+
			fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", PostgresUser, PostgresPassword),
		"SET password_encryption = 'md5'; "+
			fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", PostgresMD5User, PostgresMD5Password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", PostgresDatabase, PostgresUser),
		fmt.Sprintf("GRANT ALL ON DATABASE %s TO %s", PostgresDatabase, PostgresMD5User))
	if err != nil {
		return fmt.Errorf("creating the test accounts and database: %w", err)
	}
	// Tables are made by the tests' own account; the other may use them.
	err = p.superSQL(PostgresDatabase, fmt.Sprintf(
		"ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA public GRANT ALL ON TABLES TO %s", PostgresUser, PostgresMD5User))
	if err != nil {
		return fmt.Errorf("granting the test tables: %w", err)
	}
	return nil
}

// stop ends the server with pg_ctl's fast mode, then by SIGKILL if it did
// not go.
func (p *Postgres) stop() error {
	select {
	case <-p.done:
		return nil // already gone
	default:
	}
	out, err := p.run("pg_ctl", "stop", "-D", p.Dir, "-m", "fast", "-w", "-t", "30")
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("postgres did not stop in 30 s (pg_ctl: %v: %s); killed", err, bytes.TrimSpace(out))
	}
}

func (p *Postgres) logTail() string {
	b, _ := os.ReadFile(p.log)
	return postgresLastLines(b, 20)
}

// postgresAccount is the account that owns a cluster when tests run as
// root.
type postgresAccount struct{ uid, gid int }

// postgresOwner says how to run the server's programs: as the postgres
// account (with runuser) when the tests run as root, which PostgreSQL
// refuses, else as the current user.
func postgresOwner() (prefix []string, owner *postgresAccount, err error) {
	if os.Geteuid() != 0 {
		return nil, nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, errors.New("PostgreSQL refuses to run as root and there is no postgres account: " +
			"install the server with `apt-get install postgresql` (it creates the account)")
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		return nil, nil, errors.New("runuser not found: install util-linux to run PostgreSQL as the postgres account")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return []string{runuser, "-u", "postgres", "--"}, &postgresAccount{uid, gid}, nil
}

// postgresBinDir finds the directory of initdb and postgres: Debian keeps
// them in /usr/lib/postgresql/<major>/bin, off PATH; the newest major
// wins. Elsewhere they may be on PATH.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return postgresMajor(dirs[i]) > postgresMajor(dirs[j]) })
	if initdb, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(initdb))
	}
	for _, d := range dirs {
		ok := true
		for _, prog := range []string{"initdb", "postgres", "pg_ctl", "psql"} {
			if st, err := os.Stat(filepath.Join(d, prog)); err != nil || st.Mode()&0o111 == 0 {
				ok = false
				break
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL programs (initdb, postgres, pg_ctl, psql) not found in " +
		"/usr/lib/postgresql/*/bin or on PATH: install them with `apt-get install postgresql postgresql-client`")
}

// postgresMajor is the major version in a Debian bin directory's path.
func postgresMajor(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// postgresFreePort returns the first port of ports nothing listens on.
func postgresFreePort(ports []int) (int, error) {
	for _, p := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port among %v for PostgreSQL", ports)
}

// postgresLastLines returns the last n lines of b.
func postgresLastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
