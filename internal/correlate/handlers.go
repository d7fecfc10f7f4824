package correlate

// ServedOn tells that task now serves the request of server span s of
// process pid: a Go HTTP/2 server (grpc-go, net/http) reads a stream's
// request on its connection's reader goroutine and runs its handler on
// another, which makes the calls. The request's task becomes task; a
// request task was said to serve before is not its any more (a worker
// goroutine serves one stream after another), so calls task makes now
// go to s alone. It reports whether s is still served.
func (l *Linker) ServedOn(pid uint32, s *Span, task uint64) bool {
	sv := l.inflight[pid]
	if sv == nil || task == 0 {
		return false
	}
	found := false
	for i := range sv.list {
		in := &sv.list[i]
		switch {
		case in.span == s:
			in.th.Task, found = task, true
		case in.th.Task == task:
			in.th.Task = 0
		}
	}
	return found
}
