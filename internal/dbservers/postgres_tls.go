package dbservers

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartPostgresTLS is StartPostgres with TLS on (ssl = on), with a
// certificate for 127.0.0.1 and localhost made for the test, so that
// clients can connect with sslmode=require. The certificate is in
// Postgres.CertFile, for clients that verify it.
func StartPostgresTLS(t testing.TB) *Postgres {
	t.Helper()
	p := StartPostgres(t)
	if err := p.enableTLS(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TLSDSN is DSN with sslmode=require: libpq and pgx insist on TLS but do
// not check the certificate.
func (p *Postgres) TLSDSN(db string) string {
	return strings.Replace(p.DSN(db), "sslmode=disable", "sslmode=require", 1)
}

// CertFile is the server's certificate, once StartPostgresTLS made it.
func (p *Postgres) CertFile() string { return filepath.Join(p.Dir, "server.crt") }

// enableTLS writes a certificate and key where the server looks for them
// by default (server.crt and server.key in the data directory, the key
// readable by the server's owner only), turns ssl on and reloads the
// configuration, which TLS settings take effect from.
func (p *Postgres) enableTLS() error {
	cert, key, err := selfSigned()
	if err != nil {
		return fmt.Errorf("making a certificate for PostgreSQL: %w", err)
	}
	_, owner, err := postgresOwner()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"server.crt", cert}, {"server.key", key}} {
		path := filepath.Join(p.Dir, f.name)
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if owner != nil {
			if err := os.Chown(path, owner.uid, owner.gid); err != nil {
				return fmt.Errorf("giving %s to the postgres account: %w", path, err)
			}
		}
	}
	if err := p.superSQL("postgres", "ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("turning TLS on: %w", err)
	}
	// The reload is a signal: wait until the server says TLS is on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := p.run("psql", "-X", "-tA", "-h", filepath.Dir(p.Dir), "-p", fmt.Sprint(p.Port),
			"-U", postgresSuperuser, "-d", "postgres", "-c", "SHOW ssl")
		if err == nil && string(bytes.TrimSpace(out)) == "on" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL did not turn TLS on (SHOW ssl: %v %s): %s", err, bytes.TrimSpace(out), p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// selfSigned makes a self-signed ECDSA certificate for 127.0.0.1 and
// localhost, in PEM.
func selfSigned() (cert, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
