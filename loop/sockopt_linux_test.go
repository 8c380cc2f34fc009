package loop

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// TestDeferAccept: the listener carries TCP_DEFER_ACCEPT and still serves.
func TestDeferAccept(t *testing.T) {
	o := testOptions()
	o.DeferAccept = 2 * time.Second
	s := startServer(t, newTestHandler(), o)
	if err := s.Start(); err != ErrServerStarted {
		t.Fatalf("second Start: %v", err)
	}
	fd, err := s.eng.Dup()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
	if err != nil || v == 0 {
		t.Fatalf("TCP_DEFER_ACCEPT = %d, %v", v, err)
	}
	w := dialWS(t, s)
	w.Write(text("deferred"))
	w.ExpectMessage(ws.OpText, []byte("deferred"))
	w.CloseNormally()
}
