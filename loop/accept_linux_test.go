package loop

import (
	"bytes"
	"errors"
	"net/netip"
	"runtime"
	"testing"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// gnetAcceptor is the function of gnet's (v2.9.7) acceptor goroutine, the
// one that accepts apart from the loops.
const gnetAcceptor = "/gnet/v2.(*eventloop).rotate("

// acceptors counts the goroutines of the process running gnet's acceptor.
func acceptors() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte(gnetAcceptor))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestSingleLoopAcceptsItself checks who accepts: a single loop on its
// own listener, which then has SO_REUSEPORT, so that no acceptor goroutine
// competes with the loop for a P (see ownListeners); with ExclusivePort,
// or several loops, gnet's acceptor on a listener without SO_REUSEPORT,
// which no other socket can bind. It also checks the assumption read from
// gnet's source that its ReusePort mode runs no acceptor. Every variant
// serves, and the descriptor guard tunes the backlog of the listener.
func TestSingleLoopAcceptsItself(t *testing.T) {
	cases := []struct {
		loops     int
		exclusive bool
		acceptor  bool // gnet's acceptor runs; the listener lacks SO_REUSEPORT
	}{
		{1, false, false},
		{1, true, true},
		{2, false, true},
		{2, true, true},
	}
	for i, c := range cases {
		o := testOptions()
		o.NumLoops, o.ExclusivePort = c.loops, c.exclusive
		o.FDReserve = 64
		before := acceptors()
		s := startServer(t, newTestHandler(), o)
		if got, want := acceptors()-before, map[bool]int{false: 0, true: 1}[c.acceptor]; got != want {
			t.Errorf("#%d: got %d acceptor goroutines; want %d", i, got, want)
		}
		fd, err := s.eng.Dup()
		if err != nil {
			t.Fatal(err)
		}
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT)
		_ = unix.Close(fd)
		if err != nil || (v != 0) == c.acceptor {
			t.Errorf("#%d: got SO_REUSEPORT %d, %v; want it set %v", i, v, err, !c.acceptor)
		}
		// What SO_REUSEPORT means to anyone else (socket(7)): a socket of
		// the same user that sets it binds the address too.
		err = bindReusePort(s.Addr().String())
		if c.acceptor && !errors.Is(err, unix.EADDRINUSE) || !c.acceptor && err != nil {
			t.Errorf("#%d: binding the server's address with SO_REUSEPORT: got %v; want success %v", i, err, !c.acceptor)
		}
		if s.FDLimit().Backlog == 0 {
			t.Errorf("#%d: got FDLimit %+v; want the backlog tuned", i, s.FDLimit())
		}
		w := dialWS(t, s)
		w.Write(text("hello"))
		w.ExpectMessage(ws.OpText, []byte("hello"))
		w.CloseNormally()
		if err := s.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// bindReusePort binds a TCP socket with SO_REUSEPORT to the IPv4 address
// addr, without listening, and closes it.
func bindReusePort(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return err
	}
	return unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
}
