package gateway

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/wstest"
	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/loop/frame"
)

// deflateLoop wraps the gateway's loop Handler: it agrees to
// permessage-deflate, at the default level, with every WebSocket handshake
// that the gateway upgrades and that offers it.
type deflateLoop struct {
	loop.Handler
	threshold int
}

func (h deflateLoop) OnRequest(r *loop.Request, d *loop.Decision) {
	h.Handler.OnRequest(r, d)
	if d.Action != loop.ActUpgrade || !r.WebSocket {
		return
	}
	it := r.Head.Extensions()
	if p, ok, err := deflate.Negotiate(&it, deflate.Config{}); err == nil && ok {
		d.Deflate(p, deflate.DefaultLevel, h.threshold)
	}
}

// withDeflate makes the gateway agree to permessage-deflate, compressing
// messages of threshold bytes or more.
func withDeflate(threshold int) Option {
	return func(g *Gateway) {
		g.wrapLoop = func(h loop.Handler) loop.Handler { return deflateLoop{h, threshold} }
	}
}

// Kinds of subscriber: no deflate, deflate with a 15-bit window, deflate
// with a 10-bit window (two distinct compressed frames per publish).
const (
	kindPlain = iota
	kindZ15
	kindZ10
	numKinds
)

var kindOffers = [numKinds]string{
	kindZ15: "Sec-WebSocket-Extensions: permessage-deflate",
	kindZ10: "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10",
}

// dialKind opens a WebSocket on path as a subscriber of kind, checking
// that the 101 agreed to permessage-deflate when it was offered.
func dialKind(t testing.TB, g *Gateway, path string, kind int) *wstest.Client {
	t.Helper()
	rc := wstest.Dial(t, g.Addr().String())
	var extra []string
	if kind != kindPlain {
		extra = append(extra, kindOffers[kind])
	}
	rc.Write(wstest.UpgradeRequest(path, extra...))
	status, head := rc.ReadHead()
	if status != 101 || strings.Contains(head, "permessage-deflate") != (kind != kindPlain) {
		t.Fatalf("kind %d: handshake answer:\n%s", kind, head)
	}
	return rc
}

// readPublish reads one message and checks that it is a text frame holding
// want, compressed (RSV1) exactly when z.
func readPublish(t testing.TB, rc *wstest.Client, d *deflate.Decompressor, want []byte, z bool) error {
	t.Helper()
	f, err := wstest.ReadFrame(rc.R)
	if err != nil {
		return err
	}
	p := f.Payload
	if f.Rsv == 4 {
		if p, err = d.Decompress(nil, p, 1<<20); err != nil {
			return fmt.Errorf("inflating %v: %v", f, err)
		}
	}
	if !f.Fin || f.Op != ws.OpText || (f.Rsv == 4) != z || f.Rsv&^4 != 0 || !bytes.Equal(p, want) {
		return fmt.Errorf("got %v; want text, compressed %v, %q", f, z, trunc(want))
	}
	return nil
}

func trunc(b []byte) []byte { return b[:min(len(b), 24)] }

// quotes is a compressible message of about 1.4 KB, numbered by seq.
func quotes(seq int) []byte {
	b := fmt.Appendf(nil, "%d:", seq)
	for i := range 60 {
		b = fmt.Appendf(b, `{"sym":"AB%c","px":%d},`, 'A'+i%26, 1000+i)
	}
	return b
}

// deflateFleet starts a gateway on two loops that compresses messages of 64
// bytes or more and opens n subscribers of /ws/z of every kind in turn.
func deflateFleet(t *testing.T, n int) (*Gateway, []*wstest.Client, []int) {
	cfg := testConfig(Route{Path: "/ws/{topic}", Behaviour: PubSub, Publish: true})
	cfg.Loops = 2
	g := startGateway(t, cfg, withDeflate(64))
	subs := make([]*wstest.Client, n)
	kinds := make([]int, n)
	for i := range subs {
		kinds[i] = i % numKinds
		subs[i] = dialKind(t, g, "/ws/z", kinds[i])
	}
	eventually(t, "subscriptions", func() bool { return g.Subscribers("z") == n })
	tp := g.topics.lookup("z")
	for i := range tp.loops {
		if tp.on(i) == 0 {
			t.Fatalf("no subscriber on loop %d: the test needs both loops", i)
		}
	}
	return g, subs, kinds
}

// TestPublishDeflate publishes to subscribers with and without
// permessage-deflate on two loops, from another goroutine and from a
// client: those that negotiated it get the messages of the threshold or
// more compressed, the others plain, and every message is compressed once
// per window size, not per subscriber; a small message goes out plain to
// everyone and is not compressed at all.
func TestPublishDeflate(t *testing.T) {
	g, subs, kinds := deflateFleet(t, 12)
	d := deflate.NewDecompressor()
	publisher := subs[kindPlain]
	cases := []struct {
		payload []byte
		client  bool
		zs      uint64 // compressions
	}{
		{quotes(0), false, 2},
		{[]byte("tick"), false, 0},
		{quotes(1), true, 2},
		{[]byte("tock"), true, 0},
		{quotes(2)[:64], false, 2},
		{quotes(3)[:63], true, 0},
	}
	for i, tc := range cases {
		before := g.zpub.count.Load()
		if tc.client {
			publisher.Write(maskedFrame(ws.OpText, tc.payload))
		} else if n, err := g.Publish("z", OpText, tc.payload); n != len(subs) || err != nil {
			t.Fatalf("#%d: Publish got (%d, %v); want (%d, nil)", i, n, err, len(subs))
		}
		for j, rc := range subs {
			z := kinds[j] != kindPlain && len(tc.payload) >= 64
			if err := readPublish(t, rc, d, tc.payload, z); err != nil {
				t.Fatalf("#%d: subscriber %d (kind %d): %v", i, j, kinds[j], err)
			}
		}
		if got := g.zpub.count.Load() - before; got != tc.zs {
			t.Errorf("#%d: got %d compressions; want %d", i, got, tc.zs)
		}
	}
}

// TestPublishDeflateJoined holds both loops while messages, compressed and
// not, queue up for them: each loop then writes them to each subscriber in
// one write, joined for its kind, and every subscriber reads them in order,
// each compressed or plain as its kind takes it.
func TestPublishDeflateJoined(t *testing.T) {
	g, subs, kinds := deflateFleet(t, 9)
	release := make(chan struct{})
	for i := range g.queues {
		if err := g.srv.Execute(i, func() { <-release }); err != nil {
			t.Fatal(err)
		}
	}
	msgs := [][]byte{quotes(0), []byte("small 1"), quotes(1), quotes(2), []byte("small 2"), quotes(3)}
	plain := 0
	for _, m := range msgs {
		if _, err := g.Publish("z", OpText, m); err != nil {
			t.Fatal(err)
		}
		plain += frame.HeaderLen(len(m)) + len(m)
	}
	// The stalled loops' queues count every frame they hold against
	// Limits.MaxLoopBacklog, the compressed copies too.
	for i := range g.queues {
		q := &g.queues[i]
		q.mu.Lock()
		held, copies := 0, 0
		for _, it := range q.items {
			held += len(it.buf)
			copies += it.z.queued()
		}
		q.mu.Unlock()
		if held != plain || copies == 0 {
			t.Fatalf("loop %d: queued %d plain bytes and %d compressed; want %d and some", i, held, copies, plain)
		}
		if got := q.bytes.Load(); got != int64(held+copies) {
			t.Errorf("loop %d: got a backlog of %d bytes; want %d (plain %d + compressed %d)", i, got, held+copies, held, copies)
		}
	}
	close(release)
	d := deflate.NewDecompressor()
	for j, rc := range subs {
		for i, m := range msgs {
			z := kinds[j] != kindPlain && len(m) >= 64
			if err := readPublish(t, rc, d, m, z); err != nil {
				t.Fatalf("subscriber %d (kind %d), message #%d: %v", j, kinds[j], i, err)
			}
		}
	}
	// Each loop joined the frames per kind: its joins hold one per kind.
	for i := range g.queues {
		q := &g.queues[i]
		got := make(chan int, 1)
		if err := g.srv.Execute(i, func() { got <- len(q.joins) }); err != nil {
			t.Fatal(err)
		}
		if n := <-got; n != numKinds {
			t.Errorf("loop %d: got %d joined writes per subscriber kind; want %d", i, n, numKinds)
		}
	}
}
