package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/upgate/upgate/bench/internal/splice"
	"github.com/upgate/upgate/gateway"
)

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startUpgateTunnel starts a gateway with one tcp route to upstream, as
// bench/peers/upgatetunnel does, and returns its address.
func startUpgateTunnel(t *testing.T, upstream string) string {
	t.Helper()
	g, err := gateway.New(gateway.Config{
		Listen: "127.0.0.1:0", Admin: "off", Loops: 1,
		Routes: []gateway.Route{{Path: "/tunnel", Behaviour: gateway.TCP, Upstream: upstream}},
	}, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return g.Addr().String()
}

// startSplice starts the splice baseline toward upstream and returns its
// address.
func startSplice(t *testing.T, upstream string) string {
	t.Helper()
	s, err := splice.New(splice.Options{Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-served; !errors.Is(err, splice.ErrClosed) {
			t.Errorf("Serve: got %v; want ErrClosed", err)
		}
	})
	return ln.Addr().String()
}

func TestTunnelScenario(t *testing.T) {
	pr := newProgress(false)
	for i, tc := range []struct {
		server, dir string
	}{
		{"upgate", dirUp}, {"upgate", dirDown}, {"upgate", dirBoth}, {"splice", dirUp}, {"splice", dirDown},
	} {
		up := freeAddr(t)
		addr := startSplice(t, up)
		if tc.server == "upgate" {
			addr = startUpgateTunnel(t, up)
		}
		cfg := &config{
			scenario: "tunnel", server: tc.server, addr: addr, upstream: up, path: "/tunnel", dir: tc.dir,
			conns: 3, concurrency: 8, size: 64 << 10, setups: 5, verifyStream: true,
			duration: 250 * time.Millisecond, warmup: 50 * time.Millisecond, sources: 4, hsTimeout: 5 * time.Second,
		}
		r, err := runTunnel(cfg, pr)
		if err != nil {
			t.Fatalf("#%d: %s %s: %v", i, tc.server, tc.dir, err)
		}
		ti := r.Tunnel
		if ti == nil || ti.Direction != tc.dir || ti.Bytes == 0 || ti.MiBPerSec <= 0 || !ti.Verified {
			t.Errorf("#%d: got tunnel %+v; want %s, some bytes verified", i, ti, tc.dir)
		}
		if r.Handshakes != 5 || r.HandshakeLatency == nil || r.HandshakeLatency.Count != 5 || r.Failed != 0 || r.Lost != 0 {
			t.Errorf("#%d: got %d setups (latency %+v), %d failed, %d lost (%v); want 5 timed, none failed or lost",
				i, r.Handshakes, r.HandshakeLatency, r.Failed, r.Lost, r.Errors)
		}
		if got, want := section(r), "tunnel-"+tc.dir; got != want {
			t.Errorf("#%d: section: got %q; want %q", i, got, want)
		}
	}
}

// TestTunnelRefused: a server whose upstream is down answers 502, which
// the run reports as failed setups.
func TestTunnelRefused(t *testing.T) {
	up := freeAddr(t)
	for i, addr := range []string{startUpgateTunnel(t, up), startSplice(t, up)} {
		cfg := &config{
			scenario: "tunnel", server: "test", addr: addr, upstream: freeAddr(t), path: "/tunnel", dir: dirUp,
			conns: 1, concurrency: 1, size: 1 << 10, setups: 2, verifyStream: true,
			duration: 100 * time.Millisecond, sources: 1, hsTimeout: 5 * time.Second,
		}
		r, err := runTunnel(cfg, newProgress(false))
		if err == nil || r == nil || r.Failed != 2 || r.Errors["status 502"] != 2 {
			var errs map[string]int64
			if r != nil {
				errs = r.Errors
			}
			t.Errorf("#%d: got %v, errors %v; want 2 setups failed with 502", i, err, errs)
		}
	}
}

func TestTunnelTable(t *testing.T) {
	run := func(server string, n int, mibps, perMiB float64) *Result {
		return &Result{Scenario: "tunnel", Server: server, Settings: Settings{Conns: n, Direction: dirUp},
			Tunnel: &TunnelInfo{Direction: dirUp, MiBPerSec: mibps, ServerCPUPerMiBUs: perMiB}}
	}
	gs := []*group{
		{scenario: "tunnel-up", server: "splice", runs: []*Result{run("splice", 16, 900, 400), run("splice", 1, 800, 500)}},
		{scenario: "tunnel-up", server: "upgate", runs: []*Result{run("upgate", 16, 1000, 300), run("upgate", 1, 700, 600)}},
	}
	tb := tunnelTable(gs)
	col := func(row int, name string) string {
		for i, h := range tb.head {
			if h == name {
				return tb.rows[row][i]
			}
		}
		t.Fatalf("no column %q in %q", name, tb.head)
		return ""
	}
	for i, c := range []struct {
		row        int
		name, want string
	}{
		{0, "tunnels", "1"}, {0, "server", "upgate"}, {0, "vs splice", "1.20×"},
		{1, "server", "splice"}, {1, "vs splice", "1.00×"},
		{2, "tunnels", "16"}, {2, "server", "upgate"}, {2, "MiB/s", "1000"}, {2, "vs splice", "0.75×"},
	} {
		if got := col(c.row, c.name); got != c.want {
			t.Errorf("#%d: row %d, %s: got %q; want %q", i, c.row, c.name, got, c.want)
		}
	}
}
