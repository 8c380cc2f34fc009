package main

import (
	"bytes"
	"errors"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/flate"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// startWS serves a gorilla echo over ws://, with permessage-deflate when
// compress is set, and returns its address.
func startWS(t *testing.T, compress bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(t, ln, websocket.Upgrader{EnableCompression: compress})
	return ln.Addr().String()
}

// serveEcho serves a gorilla echo on ln with up until the test ends.
func serveEcho(t *testing.T, ln net.Listener, up websocket.Upgrader) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}), ErrorLog: log.New(io.Discard, "", 0)} // handshakes cut off at the end of a run
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func deflateTestConfig(addr, mode string) *config {
	return &config{
		scenario: "echo", server: "test", addr: addr, path: "/echo", conns: 4,
		duration: 300 * time.Millisecond, warmup: 50 * time.Millisecond,
		concurrency: 4, sources: 4, verifyAccept: true, closeMode: "rst", hsTimeout: 5 * time.Second,
		deflate: mode,
	}
}

func TestDeflateEcho(t *testing.T) {
	on, off := startWS(t, true), startWS(t, false)
	pr := newProgress(false)
	for i, tc := range []struct {
		addr, mode string
		negotiated string // "": none
		compressed bool   // wire bytes per message well under the message
		declined   bool
	}{
		{on, deflateNoTakeover, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, false},
		{on, deflateTakeover, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, false},
		{on, deflateNone, "", false, false},
		{off, deflateNone, "", false, false},
		{off, deflateNoTakeover, "", false, true},
	} {
		r, err := runEcho(deflateTestConfig(tc.addr, tc.mode), pr)
		if tc.declined {
			if !errors.Is(err, errDeclined) || r == nil || r.Deflate == nil || r.Deflate.Declined == 0 || r.Errors["declined permessage-deflate"] == 0 {
				t.Errorf("#%d: got %v, %+v; want the run ended as declined", i, err, r)
			}
			continue
		}
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		d := r.Deflate
		if r.Scenario != "deflate-echo" || d == nil || d.Mode != tc.mode {
			t.Fatalf("#%d: got scenario %s, deflate %+v; want deflate-echo, mode %s", i, r.Scenario, d, tc.mode)
		}
		if r.Messages == 0 || r.Failed != 0 || r.Lost != 0 || d.Uncompressed != 0 {
			t.Errorf("#%d: got %d messages, %d failed, %d lost, %d uncompressed (%v); want some, none failed, lost or uncompressed",
				i, r.Messages, r.Failed, r.Lost, d.Uncompressed, r.Errors)
		}
		var got []string
		for v := range d.Negotiated {
			got = append(got, v)
		}
		if want := tc.negotiated; strings.Join(got, "|") != want {
			t.Errorf("#%d: negotiated %q; want %q", i, got, want)
		}
		if d.MessageBytes < 1800 || d.MessageBytes > 2048 || d.Messages != 16 {
			t.Errorf("#%d: %d messages of %.0f bytes on average; want 16 of about 2 KiB", i, d.Messages, d.MessageBytes)
		}
		// Uncompressed: header (2 + 2) plus masking key (4) one way.
		plain := d.MessageBytes + 4
		if tc.compressed {
			if d.SentWireBytes > plain/2 || d.RecvWireBytes > plain/2 || d.SentWireBytes < 100 || d.RecvWireBytes < 100 {
				t.Errorf("#%d: wire %.0f and %.0f bytes per message; want compressed (under %.0f)", i, d.SentWireBytes, d.RecvWireBytes, plain/2)
			}
		} else if math.Abs(d.SentWireBytes-d.RecvWireBytes-4) > 0.01 || math.Abs(d.RecvWireBytes-plain) > 0.02*plain {
			// The mean over the messages echoed, not over the 16.
			t.Errorf("#%d: wire %.0f and %.0f bytes per message; want about %.0f and %.0f", i, d.SentWireBytes, d.RecvWireBytes, plain+4, plain)
		}
	}
}

// TestInflateWindow checks the client's inflation of a server that keeps
// its context: each message may refer to the ones before.
func TestInflateWindow(t *testing.T) {
	msgs := jsonMessages(16, 2048)
	var z bytes.Buffer
	w, err := flate.NewWriter(&z, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{}
	d, err := newDeflateClient(e, deflateTakeover)
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{takeover: true}
	total, wire := 0, 0
	for round := range 3 {
		for i, m := range msgs {
			z.Reset()
			_, _ = w.Write(m)
			_ = w.Flush()
			p := z.Bytes()
			if !bytes.HasSuffix(p, []byte{0, 0, 0xff, 0xff}) {
				t.Fatalf("flush did not end with the empty stored block")
			}
			p = p[:len(p)-4]
			c.out = m
			if why := d.check(c, loadgen.OpText|loadgen.RSV1, p); why != "" {
				t.Fatalf("round %d, message %d: %s", round, i, why)
			}
			if len(c.window) > windowSize {
				t.Fatalf("window of %d bytes", len(c.window))
			}
			total, wire = total+len(m), wire+len(p)
		}
	}
	// From the second round on, every message repeats one in the window.
	if wire*5 > total {
		t.Errorf("%d bytes for %d: the context was not used", wire, total)
	}
}

func TestDeflateTable(t *testing.T) {
	run := func(server, mode string, msgs int64, cpu, sent, recv float64, negotiated string) *group {
		d := &DeflateInfo{Mode: mode, SentWireBytes: sent, RecvWireBytes: recv}
		if negotiated != "" {
			d.Negotiated = map[string]int64{negotiated: 1}
		} else if mode != deflateNone {
			d.Declined = 1
		}
		r := &Result{Scenario: "deflate-echo", Server: server, Messages: msgs, ServerCPUPerOpUs: cpu, Deflate: d,
			MessagesPerSec: float64(msgs)}
		return &group{scenario: section(r), server: server, runs: []*Result{r}}
	}
	base := []*group{run("upgate", deflateNone, 100, 10, 2008, 2004, ""), run("gws", deflateNone, 100, 20, 2008, 2004, "")}
	gs := []*group{run("upgate", deflateNoTakeover, 0, 0, 0, 0, ""), run("gws", deflateNoTakeover, 100, 60, 800, 806, "permessage-deflate")}
	tb := deflateTable(gs, base)
	col := func(row int, name string) string { return tb.rows[row][slices.Index(tb.head, name)] }
	for i, c := range []struct {
		row        int
		name, want string
	}{
		{0, "negotiated", "declined"},
		{0, "wire B/message sent", "–"},
		{0, "CPU vs no deflate", "–"},
		{0, "runs", "1"},
		{1, "negotiated", "permessage-deflate"},
		{1, "wire B/message sent", "800"},
		{1, "received", "806"},
		{1, "wire vs no deflate", "0.40×"},
		{1, "CPU vs no deflate", "3.00×"},
		{1, "server CPU µs/message", "60.00"},
	} {
		if got := col(c.row, c.name); got != c.want {
			t.Errorf("#%d: row %d, %s: got %q; want %q", i, c.row, c.name, got, c.want)
		}
	}
	if gs[0].scenario != "deflate-echo-no-takeover" || base[0].scenario != "deflate-echo-none" {
		t.Errorf("sections %s, %s; want deflate-echo-no-takeover, deflate-echo-none", gs[0].scenario, base[0].scenario)
	}
}
