package dbservers

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A TLS-enabled server takes sslmode=require connections, over TLS.
func TestPostgresTLS(t *testing.T) {
	p := StartPostgresTLS(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, p.TLSDSN(PostgresDatabase))
	require.NoError(t, err)
	defer c.Close(ctx)
	var ssl bool
	require.NoError(t, c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
	require.True(t, ssl)
}
