package main

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestDeflateHold(t *testing.T) {
	on, off := startWS(t, true), startWS(t, false)
	pr := newProgress(false)
	for i, tc := range []struct {
		addr, mode string
		compressed bool
		declined   bool
	}{
		{on, deflateNoTakeover, true, false},
		{on, deflateNone, false, false},
		{off, deflateNoTakeover, false, true},
	} {
		cfg := &config{
			scenario: "hold", server: "test", addr: tc.addr, path: "/echo", conns: 40, holdFrom: 10,
			settle: 20 * time.Millisecond, duration: 50 * time.Millisecond, concurrency: 8, sources: 4,
			verifyAccept: true, closeMode: "rst", hsTimeout: 5 * time.Second, deflate: tc.mode,
		}
		r, err := runHold(cfg, pr)
		if tc.declined {
			if !errors.Is(err, errDeclined) || r == nil || r.Scenario != "deflate-hold" || r.Deflate == nil || r.Deflate.Declined == 0 {
				t.Errorf("#%d: got %v, %+v; want the run ended as declined", i, err, r)
			}
			continue
		}
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		d := r.Deflate
		if r.Scenario != "deflate-hold" || d == nil || d.Mode != tc.mode || section(r) != "deflate-hold-"+tc.mode {
			t.Fatalf("#%d: got scenario %s, deflate %+v; want deflate-hold, mode %s", i, r.Scenario, d, tc.mode)
		}
		if r.Held != 40 || r.Messages != 40 || r.Failed != 0 || r.Lost != 0 || d.Uncompressed != 0 {
			t.Errorf("#%d: held %d, %d echoes, %d failed, %d lost, %d uncompressed (%v); want 40, 40 and none",
				i, r.Held, r.Messages, r.Failed, r.Lost, d.Uncompressed, r.Errors)
		}
		if got := len(d.Negotiated); got != map[bool]int{true: 1, false: 0}[tc.compressed] {
			t.Errorf("#%d: negotiated %v", i, d.Negotiated)
		}
		plain := d.MessageBytes + 4
		if tc.compressed != (d.RecvWireBytes < plain/2) || d.RecvWireBytes < 100 {
			t.Errorf("#%d: %.0f wire bytes per echo of %.0f; compressed: %v", i, d.RecvWireBytes, d.MessageBytes, tc.compressed)
		}
	}
}

// startHub serves gorilla subscribers on /ws/bench and a publisher on
// /pub/bench whose every message goes to all subscribers as one
// websocket.PreparedMessage: compressed once for those that negotiated
// permessage-deflate.
func startHub(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	subs := map[*websocket.Conn]bool{}
	up := websocket.Upgrader{EnableCompression: true}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if r.URL.Path == "/ws/bench" {
			mu.Lock()
			subs[c] = true
			mu.Unlock()
			defer func() { mu.Lock(); delete(subs, c); mu.Unlock() }()
		}
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if r.URL.Path != "/pub/bench" {
				continue
			}
			pm, err := websocket.NewPreparedMessage(mt, msg)
			if err != nil {
				return
			}
			mu.Lock()
			for s := range subs {
				_ = s.WritePreparedMessage(pm)
			}
			mu.Unlock()
		}
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func TestDeflateBroadcast(t *testing.T) {
	addr := startHub(t)
	pr := newProgress(false)
	for i, mode := range []string{deflateNoTakeover, deflateNone} {
		cfg := &config{
			scenario: "broadcast", server: "test", addr: addr, path: "/ws/bench", pubPath: "/pub/bench",
			conns: 20, size: 32, rate: 50, duration: 300 * time.Millisecond, warmup: 50 * time.Millisecond,
			concurrency: 8, sources: 4, verifyAccept: true, closeMode: "rst", hsTimeout: 5 * time.Second, deflate: mode,
		}
		r, err := runBroadcast(cfg, pr)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		d := r.Deflate
		if r.Scenario != "deflate-broadcast" || d == nil || section(r) != "deflate-broadcast-"+mode {
			t.Fatalf("#%d: got scenario %s, deflate %+v", i, r.Scenario, d)
		}
		if r.Delivered == 0 || r.Delivered != 20*r.Published || r.Failed != 0 || r.Incomplete != 0 || d.Uncompressed != 0 {
			t.Errorf("#%d: %d published, %d delivered, %d failed, %d incomplete, %d uncompressed (%v); want all delivered, none wrong",
				i, r.Published, r.Delivered, r.Failed, r.Incomplete, d.Uncompressed, r.Errors)
		}
		// Published: the 32-digit stamp, the JSON message, a masked header.
		plain := 32 + d.MessageBytes + 4
		if d.SentWireBytes < plain || d.SentWireBytes > plain+8 {
			t.Errorf("#%d: %.0f wire bytes per publish; want about %.0f", i, d.SentWireBytes, plain+4)
		}
		if compressed := mode != deflateNone; compressed != (d.RecvWireBytes < plain/2) || d.RecvWireBytes < 100 {
			t.Errorf("#%d: %.0f wire bytes per delivery of %.0f", i, d.RecvWireBytes, plain)
		}
	}
}

func TestDeflateHoldTable(t *testing.T) {
	run := func(server, mode string, echoed int64, perConn float64) *group {
		d := &DeflateInfo{Mode: mode}
		if mode != deflateNone {
			d.Negotiated = map[string]int64{"permessage-deflate": 1}
		}
		r := &Result{Scenario: "deflate-hold", Server: server, Messages: echoed, Held: 100, ServerBytesPerConn: perConn, Deflate: d}
		return &group{scenario: section(r), server: server, runs: []*Result{r}}
	}
	base := []*group{run("upgate", deflateNone, 100, 3000), run("gws", deflateNone, 100, 9000)}
	gs := []*group{run("upgate", deflateNoTakeover, 100, 3040), run("gws", deflateNoTakeover, 100, 13100), run("nbio", deflateNoTakeover, 0, 0)}
	tb := deflateHoldTable(gs, base)
	col := func(row int, name string) string { return tb.rows[row][slices.Index(tb.head, name)] }
	for i, c := range []struct {
		row        int
		name, want string
	}{
		{0, "negotiated", "permessage-deflate"},
		{0, "server bytes/conn", "3040"},
		{0, "vs none", "+40 B"},
		{1, "vs none", "+4100 B"},
		{1, "vs upgate", "4.31×"},
		{2, "vs none", "–"},
		{2, "server bytes/conn", "–"},
		{2, "runs", "1"},
	} {
		if got := col(c.row, c.name); got != c.want {
			t.Errorf("#%d: row %d, %s: got %q; want %q", i, c.row, c.name, got, c.want)
		}
	}
	if bt := deflateBroadcastTable(nil, nil); !slices.Contains(bt.head, "wire B/delivery") || slices.Contains(bt.head, "CPU vs no deflate") {
		t.Errorf("broadcast head %q", bt.head)
	}
	if bt := deflateBroadcastTable(nil, base); slices.Index(bt.head, "CPU vs no deflate") != slices.Index(bt.head, "server CPU µs/delivery")+1 {
		t.Errorf("broadcast head %q", bt.head)
	}
}
