// Package dbservers starts real database servers from the Debian packages
// (PostgreSQL, MariaDB, Redis) for tests: each on a loopback port of its
// own, with its data in a temporary directory, stopped when the test ends.
// Nothing is set up by hand and nothing is left behind. It is test support:
// only tests import it.
package dbservers // import "github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
