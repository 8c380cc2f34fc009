package bus

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// testServer is a NATS server for the buses of the tests to join, as a
// backend's would be; the embedded server is package natsembed's.
type testServer struct{ ns *server.Server }

// startServer starts a NATS server on a loopback port chosen by the kernel
// (unless o.Listen says otherwise), with a route listener when o has
// ClusterListen, stopped when t ends. o.Logger is not used: the server
// logs nothing.
func startServer(t testing.TB, o ServerOptions) *testServer {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	opts := &server.Options{ServerName: o.Name, NoLog: true, NoSigs: true}
	opts.Host, opts.Port = hostPort(t, o.Listen)
	if o.ClusterListen != "" {
		opts.Cluster.Name = DefaultClusterName
		opts.Cluster.Host, opts.Cluster.Port = hostPort(t, o.ClusterListen)
		for _, r := range o.Routes {
			u, err := ParseRoute(r)
			if err != nil {
				t.Fatal(err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatalf("NATS server on %s not ready in 10s", o.Listen)
	}
	t.Cleanup(func() {
		if ns.Running() {
			ns.Shutdown()
		}
	})
	return &testServer{ns}
}

// hostPort splits host:port; port 0 becomes NATS's "random port".
func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		n = server.RANDOM_PORT
	}
	return h, n
}

func (s *testServer) ClientURL() string { return s.ns.ClientURL() }
func (s *testServer) Addr() net.Addr    { return s.ns.Addr() }
func (s *testServer) Shutdown()         { s.ns.Shutdown(); s.ns.WaitForShutdown() }

// ClusterURL returns the route URL the other servers list in their routes.
func (s *testServer) ClusterURL() string {
	return "nats://" + s.ns.ClusterAddr().String()
}

// waitRoutes waits until s has routes to n other servers (a pair of
// servers may hold several route connections).
func waitRoutes(t testing.TB, s *testServer, n int) {
	t.Helper()
	eventually(t, strconv.Itoa(n)+" routes", func() bool {
		rz, err := s.ns.Routez(nil)
		if err != nil {
			return false
		}
		ids := map[string]bool{}
		for _, r := range rz.Routes {
			ids[r.RemoteID] = true
		}
		return len(ids) >= n
	})
}
