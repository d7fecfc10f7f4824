package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// The Postgres bench: a Go client (pgx, extended protocol, its statement
// cache: one Parse per connection, then Bind/Execute) making `SELECT
// $1::int` from several connections at once against a PostgreSQL server
// of its own, without the collector and with the collector selecting the
// client, in alternating rounds. The collector watches the client side:
// the database operations become CLIENT spans and
// db.client.operation.duration. The client is a child process (bench
// pg-client), started afresh for every run so that the collector selects
// it before it opens its connections.

// pgTelemetryPort is where the collector of the Postgres bench serves its
// own metrics (18800-18899 are this bench's range).
const pgTelemetryPort = 18810

func init() {
	// bench pg-client DSN CONNS: the measured client.
	if len(os.Args) > 3 && os.Args[1] == "pg-client" {
		if err := pgClientMain(os.Args[2], os.Args[3]); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// pgClientMain says READY, waits for "GO <duration>" on its input, opens
// its connections and prepares the statement on each, says RUNNING,
// queries for the duration and says "DONE <queries>" (the queries of the
// timed part).
func pgClientMain(dsn, connsArg string) error {
	n, err := strconv.Atoi(connsArg)
	if err != nil || n < 1 {
		return fmt.Errorf("connections %q: want a positive number", connsArg)
	}
	fmt.Println("READY")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the start: %w", err)
	}
	d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(line, "GO ")))
	if err != nil {
		return fmt.Errorf("start line %q: %w", line, err)
	}
	ctx := context.Background()
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return fmt.Errorf("connecting: %w", err)
		}
		defer c.Close(ctx)
		var v int
		if err := c.QueryRow(ctx, "SELECT $1::int", i).Scan(&v); err != nil {
			return fmt.Errorf("first query: %w", err)
		}
		conns[i] = c
	}
	fmt.Println("RUNNING")
	queries, err := pgLoad(conns, d)
	if err != nil {
		return err
	}
	fmt.Println("DONE", queries)
	return nil
}

// pgLoad queries on every connection from a goroutine of its own for d
// and returns how many queries completed. The end is a flag, not a
// context: pgx gives up a connection whose query a context interrupts.
// A failed query stops the run: the figures would mean nothing.
func pgLoad(conns []*pgx.Conn, d time.Duration) (int64, error) {
	var stop atomic.Bool
	var queries atomic.Int64
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				var v int
				if err := c.QueryRow(context.Background(), "SELECT $1::int", k).Scan(&v); err != nil {
					errs[i] = fmt.Errorf("query: %w", err)
					stop.Store(true)
					return
				}
				queries.Add(1)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return queries.Load(), errors.Join(errs...)
}

// pgClient is a running pg-client process.
type pgClient struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startPGClient(dsn string, conns int) (*pgClient, error) {
	cmd := exec.Command(os.Args[0], "pg-client", dsn, strconv.Itoa(conns))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &pgClient{cmd: cmd, in: in, out: bufio.NewReader(out)}
	if _, err := c.expect("READY"); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// expect reads the client's next line, which must begin with word, and
// returns the rest.
func (c *pgClient) expect(word string) (string, error) {
	line, _ := c.out.ReadString('\n')
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), word)
	if !ok {
		return "", fmt.Errorf("pg-client said %q, want %s", line, word)
	}
	return strings.TrimSpace(rest), nil
}

func (c *pgClient) stop() {
	c.in.Close()
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

type pgResult struct {
	qps                  []float64  // queries per second
	cpuPer10k            []float64  // collector CPU seconds per 10,000 queries
	spansPerQuery        []float64  // spans the collector sent per query
	programs             perProgram // kernel program run time per query
	failures             float64    // postgres parse failures, over all runs
	rssIdleKB, rssPeakKB int
}

// runPostgres starts a PostgreSQL server, measures queries/second of the
// Go client with conns connections without the collector and with the
// collector selecting the client, and prints a Markdown table.
func runPostgres(collector string, rounds int, d time.Duration, conns int) error {
	server, stopServer, err := startPostgres()
	if err != nil {
		return err
	}
	defer stopServer()
	dir, err := os.MkdirTemp("", "otelcol-ebpf-bench-pg")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dsn := server.DSN(dbservers.PostgresDatabase)
	modes := []string{"no collector", "collector, client selected"}
	results := make([]pgResult, len(modes))
	for r := 0; r < rounds; r++ {
		for i, name := range modes {
			if err := measurePG(collector, dir, dsn, i == 1, false, d, conns, &results[i]); err != nil {
				return fmt.Errorf("postgres, %s: %w", name, err)
			}
		}
	}
	// As in the main bench, the kernel programs' run time is taken in a
	// run of its own, which the throughput figures leave out.
	disableStats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: kernel program run time not measured:", err)
	} else {
		err := measurePG(collector, dir, dsn, true, true, d, conns, &results[1])
		disableStats.Close()
		if err != nil {
			return fmt.Errorf("postgres, %s: %w", modes[1], err)
		}
	}
	base := mean(results[0].qps)
	fmt.Printf("\nPostgres: a Go client (pgx, prepared `SELECT $1::int`) on %d connections to PostgreSQL on loopback, "+
		"the collector selecting the client (its own metrics on), %d alternating rounds of %v, %d CPUs, %s\n\n",
		conns, rounds, d, cpuCount(), time.Now().Format("2006-01-02"))
	fmt.Println("| mode | queries/s (mean) | ratio | collector CPU s / 10k queries | kernel ns / query | collector RSS idle / peak | spans / query | parse failures |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for i, name := range modes {
		r := results[i]
		cpu, kern, rss, spans, failures := "-", "-", "-", "-", "-"
		if i == 1 {
			cpu = fmt.Sprintf("%.3f", mean(r.cpuPer10k))
			kern = fmt.Sprintf("%.0f", r.programs.total())
			rss = fmt.Sprintf("%d MB / %d MB", r.rssIdleKB/1024, r.rssPeakKB/1024)
			spans = fmt.Sprintf("%.3f", mean(r.spansPerQuery))
			failures = fmt.Sprintf("%.0f", r.failures)
		}
		fmt.Printf("| %s | %.0f | %.3f | %s | %s | %s | %s | %s |\n", name, mean(r.qps), mean(r.qps)/base, cpu, kern, rss, spans, failures)
	}
	return nil
}

// measurePG runs a fresh client for d, with a collector selecting it when
// withCollector. With kernelStats (kernel statistics on) it records only
// the kernel programs' run time per query.
func measurePG(collector, dir, dsn string, withCollector, kernelStats bool, d time.Duration, conns int, res *pgResult) error {
	client, err := startPGClient(dsn, conns)
	if err != nil {
		return err
	}
	defer client.stop()
	var col *exec.Cmd
	if withCollector {
		config := filepath.Join(dir, "pg.yaml")
		if err := os.WriteFile(config, []byte(telemetryConfig(client.cmd.Process.Pid, pgTelemetryPort)), 0o644); err != nil {
			return err
		}
		if col, err = startCollector(collector, config); err != nil {
			return err
		}
		defer func() { col.Process.Signal(os.Interrupt); col.Wait() }()
		res.rssIdleKB = max(res.rssIdleKB, status(col.Process.Pid, "VmRSS"))
	}
	spans0 := pgScrape("otelcol_receiver_ebpf_spans", `outcome="sent"`)
	failures0 := pgScrape("otelcol_receiver_ebpf_parse_failures", `protocol="postgres"`)
	fmt.Fprintf(client.in, "GO %s\n", d)
	if _, err := client.expect("RUNNING"); err != nil {
		return err
	}
	cpu0 := cpuSeconds(col)
	kern0 := programStats(col)
	done, err := client.expect("DONE")
	if err != nil {
		return err
	}
	queries, err := strconv.ParseInt(done, 10, 64)
	if err != nil || queries == 0 {
		return fmt.Errorf("pg-client made %q queries", done)
	}
	if kernelStats {
		if res.programs == nil {
			res.programs = perProgram{}
		}
		res.programs.add(kern0, programStats(col), int(queries))
		return nil
	}
	res.qps = append(res.qps, float64(queries)/d.Seconds())
	if col == nil {
		return nil
	}
	res.cpuPer10k = append(res.cpuPer10k, (cpuSeconds(col)-cpu0)/float64(queries)*10000)
	res.rssPeakKB = max(res.rssPeakKB, status(col.Process.Pid, "VmHWM"))
	// The client closes its connections, which ends their last exchanges;
	// then the receiver's batches reach the pipeline.
	client.cmd.Wait()
	time.Sleep(time.Second)
	// The first query of every connection ran before the timed part.
	res.spansPerQuery = append(res.spansPerQuery,
		(pgScrape("otelcol_receiver_ebpf_spans", `outcome="sent"`)-spans0)/float64(queries+int64(conns)))
	res.failures += pgScrape("otelcol_receiver_ebpf_parse_failures", `protocol="postgres"`) - failures0
	return nil
}

// pgScrape sums the samples of the collector's own metric name whose
// labels contain label; 0 when there are none or nothing answers (no
// collector).
func pgScrape(name, label string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", pgTelemetryPort))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || !strings.Contains(line, label) {
			continue
		}
		rest = strings.TrimPrefix(rest, "_total")
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		total += v
	}
	return total
}

// benchTB is the testing.TB that dbservers.StartPostgres takes, outside
// a test: it keeps the cleanups for the bench to run, and a fatal error
// unwinds to startPostgres. StartPostgres calls only the methods defined
// here; the embedded nil interface would panic on any other.
type benchTB struct {
	testing.TB
	cleanups []func()
}

type benchFatal struct{ msg string }

func (*benchTB) Helper()                           {}
func (t *benchTB) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (*benchTB) Fatal(args ...any)                 { panic(benchFatal{fmt.Sprint(args...)}) }
func (*benchTB) Fatalf(format string, args ...any) { panic(benchFatal{fmt.Sprintf(format, args...)}) }
func (*benchTB) Errorf(format string, args ...any) {
	fmt.Fprintln(os.Stderr, "bench:", fmt.Sprintf(format, args...))
}

// cleanUp runs the cleanups, last first, as testing does.
func (t *benchTB) cleanUp() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// startPostgres starts a PostgreSQL server with dbservers and returns
// the function that stops it and removes its files.
func startPostgres() (server *dbservers.Postgres, stop func(), err error) {
	t := &benchTB{}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(benchFatal)
			if !ok {
				panic(r)
			}
			t.cleanUp()
			err = fmt.Errorf("starting PostgreSQL: %s", f.msg)
		}
	}()
	return dbservers.StartPostgres(t), t.cleanUp, nil
}
