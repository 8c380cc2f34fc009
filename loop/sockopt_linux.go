package loop

import (
	"time"

	"golang.org/x/sys/unix"
)

// setDeferAccept sets TCP_DEFER_ACCEPT on a listening socket.
func setDeferAccept(fd int, d time.Duration) error {
	secs := int((d + time.Second - 1) / time.Second)
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
}

// unreadBytes returns the bytes waiting in the socket's receive queue that
// no read(2) took yet (SIOCINQ), 0 when it cannot tell.
func unreadBytes(fd int) int {
	if fd < 0 {
		return 0
	}
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
