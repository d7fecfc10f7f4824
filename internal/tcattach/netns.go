package tcattach

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netns names a network namespace by a path to it (/proc/PID/ns/net,
// /run/netns/NAME) and its inode, which is checked when the path is opened:
// a path can come to name another namespace (its process exited, its pid
// was reused). The zero Netns is the caller's own. Nothing here holds a
// namespace open between calls: an open handle would keep a namespace
// alive (and a pod's interfaces with it) after its last process.
type Netns struct {
	Path  string
	Inode uint64
}

// ErrNetnsGone says a namespace's path no longer leads to it.
var ErrNetnsGone = fmt.Errorf("the network namespace is gone")

func (n Netns) own() bool { return n.Path == "" }

// open opens the namespace, checking it is still the one named.
func (n Netns) open() (netns.NsHandle, error) {
	h, err := netns.GetFromPath(n.Path)
	if err != nil {
		return netns.None(), fmt.Errorf("%w: %s: %v", ErrNetnsGone, n.Path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil || (n.Inode != 0 && st.Ino != n.Inode) {
		h.Close()
		return netns.None(), fmt.Errorf("%w: %s names another namespace now", ErrNetnsGone, n.Path)
	}
	return h, nil
}

// InNetns runs fn on an OS thread switched into namespace n (the zero
// Netns: the caller's own, without switching). The thread is dropped
// rather than reused when it cannot be switched back.
func InNetns(n Netns, fn func() error) error {
	if n.own() {
		return fn()
	}
	h, err := n.open()
	if err != nil {
		return err
	}
	defer h.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("entering network namespace %s: %w", n.Path, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else the goroutine ends locked: the runtime drops the thread
		done <- err
	}()
	return <-done
}
