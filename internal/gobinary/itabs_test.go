package gobinary

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var netConnMethods = []string{"Close", "LocalAddr", "Read", "RemoteAddr", "SetDeadline", "SetReadDeadline",
	"SetWriteDeadline", "Write"}

// The itab found by its methods is the one the symbol table names, at
// the same address in the binary stripped of it (whose dead methods are
// runtime.unreachableMethod in it).
func TestItabOf(t *testing.T) {
	built := buildTLSProgram(t)
	plain, err := Open(built["plain"])
	require.NoError(t, err)
	defer plain.Close()
	stripped, err := Open(built["stripped"])
	require.NoError(t, err)
	defer stripped.Close()
	want, err := plain.Symbol("go:itab.*net.TCPConn,net.Conn")
	require.NoError(t, err)
	got, err := plain.ItabOf("net.(*TCPConn)", netConnMethods)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	got, err = stripped.ItabOf("net.(*TCPConn)", netConnMethods)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// The program never makes a *tls.Conn a net.Conn: no such itab.
	_, err = plain.Symbol("go:itab.*crypto/tls.Conn,net.Conn")
	require.Error(t, err)
	_, err = plain.ItabOf("crypto/tls.(*Conn)", netConnMethods)
	assert.ErrorContains(t, err, "no itab")
	// A net.Conn itab is no io.ReadWriteCloser's nor io.Closer's, whose
	// functions begin it.
	_, err = plain.ItabOf("net.(*TCPConn)", []string{"Close", "Read", "Write"})
	assert.Error(t, err)
	if closer, err := plain.ItabOf("net.(*TCPConn)", netConnMethods[:1]); err == nil {
		assert.NotEqual(t, want, closer, "io.Closer's is another")
	}
	_, err = plain.ItabOf("net.(*NoSuchConn)", netConnMethods)
	assert.ErrorContains(t, err, "none of the methods")
	pie, err := Open(built["pie"])
	require.NoError(t, err)
	defer pie.Close()
	_, err = pie.ItabOf("net.(*TCPConn)", netConnMethods)
	assert.ErrorIs(t, err, ErrNoSymbols)
}
