package loop

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fdGuardSupported: the guard counts descriptors in /proc/self/fd.
const fdGuardSupported = true

// countFDs counts the process's open file descriptors.
func countFDs() (int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	_ = d.Close()
	if err != nil {
		return 0, err
	}
	return len(names) - 1, nil // without d itself
}

// maxBacklog is the listen backlog gnet asks for, net.core.somaxconn (which
// also caps any other); 4096, its default since Linux 5.4, when unreadable.
func maxBacklog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return 4096
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 1 {
		return 4096
	}
	return n
}

// setBacklog sets the backlog of a listening socket.
func setBacklog(fd, n int) error { return unix.Listen(fd, n) }

// dropAll is a classic BPF program that accepts no packet.
var dropAll = [1]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// pauseListener makes a listening socket drop every packet, new SYNs
// included, by attaching dropAll (socket(7), SO_ATTACH_FILTER): connections
// already queued can still be accepted.
func pauseListener(fd int) error {
	prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
}

// resumeListener detaches pauseListener's filter.
func resumeListener(fd int) error { return shedFilter(fd) }

// shedFilter detaches a socket's filter: pauseListener's from a listener,
// or the copy an accepted connection inherited from its listener (Linux
// copies a listener's filter to the socket of every connection it
// creates, sk_clone_lock, so a connection whose handshake completed while
// dropAll was being attached would drop every packet of its own, its
// request head included). ENOENT (no filter) is success.
func shedFilter(fd int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
	if err == unix.ENOENT {
		return nil
	}
	return err
}
