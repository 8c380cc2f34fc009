package natsembed

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/internal/testutil"
)

// testLogger discards log lines unless UPGATE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("UPGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer starts a server on a loopback port chosen by the kernel
// (unless o.Listen says otherwise), stopped when t ends.
func startServer(t testing.TB, o bus.ServerOptions) *Server {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = testLogger()
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.Running() {
			s.Shutdown()
		}
	})
	return s
}

// TestPortTaken checks that Start fails at once, naming the address, when
// a listener cannot bind, instead of waiting for readiness.
func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	cases := []bus.ServerOptions{
		{Listen: taken},
		{Listen: "127.0.0.1:0", ClusterListen: taken},
	}
	for i, o := range cases {
		o.Logger = testLogger()
		start := time.Now()
		s, err := Start(o)
		if err == nil {
			s.Shutdown()
			t.Errorf("#%d: got a server; want an error", i)
			continue
		}
		want := "natsembed: listen tcp " + taken + ": bind: address already in use"
		if err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("#%d: got %v; want %s", i, err, want)
		}
		if d := time.Since(start); d >= startTimeout {
			t.Errorf("#%d: got the error after %v; want it before the start timeout, %v", i, d, startTimeout)
		}
	}
}

// nopLocal is a gateway with no connections.
type nopLocal struct{}

func (nopLocal) Deliver(uint64, bus.OpCode, []byte) error       { return bus.ErrUnknownConn }
func (nopLocal) Disconnect(uint64, uint16, string) error        { return bus.ErrUnknownConn }
func (nopLocal) Fanout(string, bus.OpCode, []byte) (int, error) { return 0, nil }

// TestStarter: a bus with an embedded server starts it through Starter,
// named after the node, is connected when Start returns, and stops it
// after itself on Close.
func TestStarter(t *testing.T) {
	if _, err := bus.New(bus.Options{Embedded: &bus.ServerOptions{}}, nopLocal{}); err == nil {
		t.Error("got a bus with an embedded server and no StartServer; want an error")
	}
	b, err := bus.New(bus.Options{Embedded: &bus.ServerOptions{Listen: "127.0.0.1:0"}, StartServer: Starter{},
		Node: "n1", Logger: testLogger()}, nopLocal{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	srv, ok := b.Server().(*Server)
	if !ok || !b.Connected() {
		t.Fatalf("got server %T, connected %v; want a *Server, connected", b.Server(), b.Connected())
	}
	if name := srv.ns.Name(); name != "n1" {
		t.Errorf("got server name %q; want the node's, n1", name)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b.Close(time.Second)
	if srv.Running() {
		t.Error("got the server running after the bus closed; want it stopped")
	}
}

// TestClusterWarnings: a node whose cluster peer goes down logs the first
// route error, then summaries; the route's return is logged at info level
// and the next outage's first error is logged again at once. The interval
// is longer than the server's one second between attempts, so that the
// kind of error is not forgotten between them.
func TestClusterWarnings(t *testing.T) {
	peer := startServer(t, bus.ServerOptions{Name: "peer", ClusterListen: "127.0.0.1:0"})
	clusterListen := peer.ClusterAddr().String()
	c := &testutil.LogCapture{}
	node := startServer(t, bus.ServerOptions{Name: "node", ClusterListen: "127.0.0.1:0",
		Routes: []string{peer.ClusterURL()}, Logger: slog.New(c), LogInterval: 1500 * time.Millisecond})
	const formed, routeErr = "cluster route connected", "Error trying to connect to route"
	testutil.Eventually(t, "the cluster formed", func() bool { return len(c.Matching(formed)) == 1 })
	if r := c.Matching(formed)[0]; r.Level != slog.LevelInfo || r.Attrs["peers"] != "1" {
		t.Fatalf("got %+v; want an info line with peers=1", r)
	}

	peer.Shutdown()
	testutil.Eventually(t, "a summary of route errors", func() bool { _, s := testutil.SplitRepeated(c.Matching(routeErr)); return len(s) > 0 })
	firsts, _ := testutil.SplitRepeated(c.Matching(routeErr))
	if len(firsts) != 1 || firsts[0].Level != slog.LevelWarn {
		t.Fatalf("got %+v; want a single route error logged as it came", firsts)
	}

	// The peer comes back on the same route listener.
	peer = startServer(t, bus.ServerOptions{Name: "peer", ClusterListen: clusterListen})
	testutil.Eventually(t, "the cluster formed again", func() bool { return len(c.Matching(formed)) == 2 })
	if kinds := node.warn.Kinds(); kinds != 0 {
		t.Errorf("got %d kinds of warnings remembered once the cluster formed; want none", kinds)
	}
	peer.Shutdown()
	testutil.Eventually(t, "the next outage's first error", func() bool { f, _ := testutil.SplitRepeated(c.Matching(routeErr)); return len(f) == 2 })
}
