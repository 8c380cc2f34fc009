//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// freePort returns a loopback port nothing listens on now, found by
// listening on port 0 and closing at once (a listener that never accepted
// leaves nothing behind).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// timeWaitOn counts the TCP sockets in TIME_WAIT whose local port is port,
// from /proc/net/tcp; ok is false where that file cannot be read.
func timeWaitOn(port int) (n int, ok bool) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, false
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "06" {
			n++
		}
	}
	return n, true
}

// TestRestartOnSamePort restarts a server on its port right after it closed
// connections itself: those sit in TIME_WAIT on the server's side, which
// must not keep the next server from binding the port.
func TestRestartOnSamePort(t *testing.T) {
	port := freePort(t)
	o := testOptions()
	o.Addr = fmt.Sprintf("tcp://127.0.0.1:%d", port)

	s, err := New(newTestHandler(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		// The server answers 404 and ends the connection first; the
		// client closes only after the server's FIN.
		w := dialRaw(t, s)
		w.Write([]byte("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"))
		if status, head := w.ReadHead(); status != 404 {
			t.Fatalf("status %d, want 404:\n%s", status, head)
		}
		_, _ = w.R.Discard(w.R.Buffered())
		w.ExpectEOF()
	}
	eventually(t, "the server to close every connection", func() bool { return s.Stats().ConnsOpen == 0 })
	if _, ok := timeWaitOn(port); ok {
		eventually(t, "TIME_WAIT on the server's port", func() bool {
			n, _ := timeWaitOn(port)
			return n > 0
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	s2 := startServer(t, newTestHandler(), o)
	w := dialRaw(t, s2)
	w.Write([]byte("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
	if status, head := w.ReadHead(); status != 200 {
		t.Fatalf("restarted server: status %d, want 200:\n%s", status, head)
	}
}

// TestListenErrorNamesAddress checks that a port already taken fails Start
// with an error naming the address, as net.Listen's does.
func TestListenErrorNamesAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o := testOptions()
	for i, addr := range []string{l.Addr().String(), "tcp://" + l.Addr().String()} {
		o.Addr = addr
		s, err := New(newTestHandler(), o)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start()
		want := "listen tcp " + l.Addr().String() + ": bind: address already in use"
		if err == nil || err.Error() != want {
			t.Errorf("#%d: got %v; want %s", i, err, want)
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			t.Errorf("#%d: got %v; want an error that is EADDRINUSE", i, err)
		}
	}
}
