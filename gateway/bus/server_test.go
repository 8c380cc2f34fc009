package bus

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// captured is a log record as a test sees it.
type captured struct {
	level    slog.Level
	msg      string
	repeated int64 // the "repeated" attribute, 0 if absent
	attrs    map[string]string
}

// capture is a slog.Handler that keeps every record, at every level.
type capture struct {
	mu   sync.Mutex
	recs []captured
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	rec := captured{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "repeated" {
			rec.repeated = a.Value.Int64()
		}
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	c.recs = append(c.recs, rec)
	c.mu.Unlock()
	return nil
}

// matching returns the records whose message contains s.
func (c *capture) matching(s string) []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []captured
	for _, r := range c.recs {
		if strings.Contains(r.msg, s) {
			out = append(out, r)
		}
	}
	return out
}

// summaries and firsts split records into summaries and lines logged as
// they came.
func split(recs []captured) (firsts, summaries []captured) {
	for _, r := range recs {
		if r.repeated > 0 {
			summaries = append(summaries, r)
		} else {
			firsts = append(firsts, r)
		}
	}
	return firsts, summaries
}

// TestClusterWarnings: a node whose cluster peer goes down logs the first
// route error, then summaries; the route's return is logged at info level
// and the next outage's first error is logged again at once. The interval
// is longer than the server's one second between attempts, so that the
// kind of error is not forgotten between them.
func TestClusterWarnings(t *testing.T) {
	peer := startServer(t, ServerOptions{Name: "peer", ClusterListen: "127.0.0.1:0"})
	clusterListen := peer.ClusterAddr().String()
	c := &capture{}
	node := startServer(t, ServerOptions{Name: "node", ClusterListen: "127.0.0.1:0",
		Routes: []string{peer.ClusterURL()}, Logger: slog.New(c), LogInterval: 1500 * time.Millisecond})
	const formed, routeErr = "cluster route connected", "Error trying to connect to route"
	eventually(t, "the cluster formed", func() bool { return len(c.matching(formed)) == 1 })
	if r := c.matching(formed)[0]; r.level != slog.LevelInfo || r.attrs["peers"] != "1" {
		t.Fatalf("got %+v; want an info line with peers=1", r)
	}

	peer.Shutdown()
	eventually(t, "a summary of route errors", func() bool { _, s := split(c.matching(routeErr)); return len(s) > 0 })
	firsts, _ := split(c.matching(routeErr))
	if len(firsts) != 1 || firsts[0].level != slog.LevelWarn {
		t.Fatalf("got %+v; want a single route error logged as it came", firsts)
	}

	// The peer comes back on the same route listener.
	peer = startServer(t, ServerOptions{Name: "peer", ClusterListen: clusterListen})
	eventually(t, "the cluster formed again", func() bool { return len(c.matching(formed)) == 2 })
	if kinds := node.warn.Kinds(); kinds != 0 {
		t.Errorf("got %d kinds of warnings remembered once the cluster formed; want none", kinds)
	}
	peer.Shutdown()
	eventually(t, "the next outage's first error", func() bool { f, _ := split(c.matching(routeErr)); return len(f) == 2 })
}
