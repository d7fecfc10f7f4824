// Command goserve is an HTTP/2 server of each kind the handler probes know
// (grpc-go, net/http's bundled HTTP/2, x/net's h2c), for the tests to read
// the layouts of: it is built, never run.
package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	switch os.Args[1] {
	case "grpc":
		grpc.NewServer().Serve(ln)
	case "grpc-tls":
		grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{}))).Serve(ln)
	case "tls":
		srv := &http.Server{TLSConfig: &tls.Config{}}
		srv.ServeTLS(ln, "cert.pem", "key.pem")
	default:
		h := h2c.NewHandler(http.NotFoundHandler(), &http2.Server{})
		http.Serve(ln, h)
	}
}
