package bus

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestServerPortTaken checks that StartServer fails at once, naming the
// address, when a listener cannot bind, instead of waiting for readiness.
func TestServerPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	cases := []ServerOptions{
		{Listen: taken},
		{Listen: "127.0.0.1:0", ClusterListen: taken},
	}
	for i, o := range cases {
		o.Logger = testLogger()
		s, err := StartServer(o)
		if err == nil {
			s.Shutdown()
			t.Errorf("#%d: got a server; want an error", i)
			continue
		}
		want := "bus: embedded server: listen tcp " + taken + ": bind: address already in use"
		if err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("#%d: got %v; want %s", i, err, want)
		}
	}
}
