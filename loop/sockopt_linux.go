package loop

import (
	"syscall"
	"time"
)

// setDeferAccept sets TCP_DEFER_ACCEPT on a listening socket.
func setDeferAccept(fd int, d time.Duration) error {
	secs := int((d + time.Second - 1) / time.Second)
	return syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secs)
}
