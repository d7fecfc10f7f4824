// Package bpf holds the kernel side of the receiver: the eBPF C sources, the
// bpf2go-generated loaders and objects (committed, so building needs no
// clang), and the code that loads and attaches them.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event -type event_kind -type event_flag -type not_injected -type counter -type tcp_counter tracer tracer.bpf.c -- -I/usr/include
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 propagate propagate.bpf.c -- -I/usr/include -I/usr/include/x86_64-linux-gnu
