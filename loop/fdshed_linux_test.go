package loop

import (
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// filterLen returns the number of instructions of fd's socket filter, 0
// when it has none (getsockopt SO_GET_FILTER with no room: the kernel
// answers the length).
func filterLen(t *testing.T, fd int) int {
	t.Helper()
	var n uint32
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_GET_FILTER, 0, uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		t.Fatalf("getsockopt SO_GET_FILTER: %v", e)
	}
	return int(n)
}

// TestShedInheritedFilter checks what the pause of the listener relies on:
// Linux copies a listener's socket filter to the connections it creates,
// and fdGuard.shed takes it off them while the listener is paused or just
// resumed, and leaves connections alone otherwise.
func TestShedInheritedFilter(t *testing.T) {
	// A raw listener, as gnet's: with it, as with gnet's, the kernel takes
	// a filter that accepts everything, so that connections are made and
	// inherit it.
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 16); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}
	passAll := [1]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}}
	prog := unix.SockFprog{Len: 1, Filter: &passAll[0]}
	if err := unix.SetsockoptSockFprog(lfd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		t.Fatal(err)
	}
	accept := func() int {
		c, err := net.DialTimeout("tcp", addr.String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}

	var g fdGuard
	g.off()
	g.start = time.Now()
	tests := []struct {
		name      string
		paused    bool
		shedUntil time.Duration // after start; 0: none
		want      int           // filter instructions left
	}{
		{"no pause: left alone", false, 0, 1},
		{"paused", true, 0, 0},
		{"just resumed", false, time.Hour, 0},
		{"resumed long ago", false, time.Nanosecond, 1},
	}
	for i, tt := range tests {
		fd := accept()
		if n := filterLen(t, fd); n != 1 {
			t.Fatalf("#%d: the accepted connection has %d filter instructions; want the listener's 1", i, n)
		}
		g.paused.Store(tt.paused)
		g.shedUntil.Store(int64(tt.shedUntil))
		g.shed(fd)
		if n := filterLen(t, fd); n != tt.want {
			t.Errorf("#%d %s: got %d filter instructions; want %d", i, tt.name, n, tt.want)
		}
		if tt.shedUntil == time.Nanosecond && g.shedUntil.Load() != 0 {
			t.Errorf("#%d: a passed window is not cleared", i)
		}
	}
	fd := accept()
	for i := 0; i < 2; i++ {
		if err := shedFilter(fd); err != nil {
			t.Errorf("shedFilter #%d: %v", i, err)
		}
	}
}
