package main

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/upgate/upgate/bench/internal/writefloor"
)

// startWriteFloor serves the broadcast floor with writers writers on a
// port of its own and returns its address and the server.
func startWriteFloor(t *testing.T, writers int) (string, *writefloor.Server) {
	t.Helper()
	s, err := writefloor.New(writefloor.Options{Writers: writers})
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
		if err := <-served; !errors.Is(err, writefloor.ErrClosed) {
			t.Errorf("Serve: got %v; want ErrClosed", err)
		}
	})
	return ln.Addr().String(), s
}

func TestBroadcastWriteFloor(t *testing.T) {
	pr := newProgress(false)
	for i, writers := range []int{1, 2} {
		addr, srv := startWriteFloor(t, writers)
		const subs = 300
		cfg := &config{
			scenario: "broadcast", server: "writefloor", addr: addr, path: writefloor.DefaultPath, pubPath: writefloor.DefaultPubPath,
			conns: subs, size: 32, rate: 20, duration: 500 * time.Millisecond, warmup: 50 * time.Millisecond,
			concurrency: 32, sources: 4, verifyAccept: true, closeMode: "rst", hsTimeout: 5 * time.Second, serverLoops: writers,
		}
		r, err := runBroadcast(cfg, pr)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if r.Published < 5 || r.Delivered != subs*r.Published || r.Incomplete != 0 || r.Failed != 0 || r.Lost != 0 {
			t.Errorf("#%d: got %d published, %d delivered, %d incomplete, %d failed, %d lost (%v); want every one of at least 5 delivered to %d subscribers",
				i, r.Published, r.Delivered, r.Incomplete, r.Failed, r.Lost, r.Errors, subs)
		}
		if r.Settings.ServerLoops != writers || r.LastSubscriber == nil || r.LastSubscriber.Count != r.Published {
			t.Errorf("#%d: got loops %d, last-subscriber latency %+v; want %d loops and one figure per message", i, r.Settings.ServerLoops, r.LastSubscriber, writers)
		}
		st := srv.Stats()
		if st.Subscribers != subs || st.Publishers != 1 || st.Rejected != 0 || st.Unfinished != 0 || st.Published != r.Published ||
			st.Written != r.Delivered || st.EAGAIN != 0 || st.Short != 0 || st.Gone != 0 {
			t.Errorf("#%d: server counted %+v; want %d subscribers, 1 publisher, %d published and %d written, nothing else",
				i, st, subs, r.Published, r.Delivered)
		}
	}
}

func TestFloorBroadcastTable(t *testing.T) {
	run := func(server string, loops int, perOp float64) *group {
		pub := "/pub/bench"
		if server == "upgate" {
			pub = "/ws/bench"
		}
		r := &Result{Scenario: "broadcast", Server: server, ServerCPUPerOpUs: perOp, Settings: Settings{ServerLoops: loops, Publish: pub}}
		return &group{scenario: "broadcast", server: server, loops: loopsOf(r), runs: []*Result{r}}
	}
	gs := []*group{run("upgate", 0, 11), run("writefloor", 1, 10), run("upgate", 2, 6), run("writefloor", 2, 4), run("upgate", 3, 5)}
	tb := floorBroadcastTable(gs)
	if at := slices.Index(tb.head, "vs floor"); at != slices.Index(tb.head, "server CPU µs/delivery")+1 || tb.head[1] != "loops" {
		t.Fatalf("head %q", tb.head)
	}
	col := func(row int, name string) string { return tb.rows[row][slices.Index(tb.head, name)] }
	for i, c := range []struct {
		row        int
		name, want string
	}{
		{0, "loops", "1"},
		{0, "vs floor", "1.10×"},
		{1, "vs floor", "1.00×"},
		{2, "loops", "2"},
		{2, "vs floor", "1.50×"},
		{3, "vs floor", "1.00×"},
		{4, "vs floor", "–"},
	} {
		if got := col(c.row, c.name); got != c.want {
			t.Errorf("#%d: row %d, %s: got %q; want %q", i, c.row, c.name, got, c.want)
		}
	}
	if got, want := publishers(gs), "/ws/bench (upgate), /pub/bench (writefloor)"; got != want {
		t.Errorf("publishers: got %q; want %q", got, want)
	}
	if got, want := publishers(gs[1:2]), "/pub/bench"; got != want {
		t.Errorf("publishers of one: got %q; want %q", got, want)
	}
}
