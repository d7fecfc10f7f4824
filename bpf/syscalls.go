package bpf

import "golang.org/x/sys/unix"

// syscallNumbers fill the tracer's nr_* constants: the numbers differ between
// architectures, and x/sys/unix knows them for each.
var syscallNumbers = map[string]int64{
	"nr_read":     unix.SYS_READ,
	"nr_write":    unix.SYS_WRITE,
	"nr_readv":    unix.SYS_READV,
	"nr_writev":   unix.SYS_WRITEV,
	"nr_recvfrom": unix.SYS_RECVFROM,
	"nr_sendto":   unix.SYS_SENDTO,
	"nr_recvmsg":  unix.SYS_RECVMSG,
	"nr_sendmsg":  unix.SYS_SENDMSG,
	"nr_sendfile": unix.SYS_SENDFILE,
	"nr_close":    unix.SYS_CLOSE,
	"nr_connect":  unix.SYS_CONNECT,
	"nr_accept":   unix.SYS_ACCEPT,
	"nr_accept4":  unix.SYS_ACCEPT4,
}
