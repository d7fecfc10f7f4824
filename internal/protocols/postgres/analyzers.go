package postgres

import "github.com/otelcol-ebpf/ebpfreceiver/internal/sqlquery"

// The analyses of statement text, named here so that a test may see what
// the parser asks of them.
var (
	sanitize   = sqlquery.Sanitize
	analyzeSQL = sqlquery.Analyze
)
