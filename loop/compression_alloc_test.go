//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

import (
	"testing"

	"github.com/gobwas/ws"
)

// deflateNop upgrades with permessage-deflate when offered, compressing
// messages of 100 bytes or more, and echoes with Write.
type deflateNop struct{ nopHandler }

func (deflateNop) OnRequest(r *Request, d *Decision) {
	if !negotiateDeflate(r, d, 100) {
		d.Reject(404, "")
	}
}

// TestAllocsPerCompressedMessage: a compressed message is inflated,
// delivered and echoed compressed (above the threshold) or plain (below)
// without allocating, once the loop's codecs and buffers are warm.
func TestAllocsPerCompressedMessage(t *testing.T) {
	s, err := New(deflateNop{}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	fc := newFakeConn(&fakeLoop{srv: s})
	ev(s).OnOpen(fc)
	fc.feed(upgradeRequest("/ws", deflateOffer))
	ev(s).OnTraffic(fc)
	if c := fc.ctx.(*conn); c.phase() != stOpen || !c.agreement().on() {
		t.Fatal("fake connection not upgraded with permessage-deflate")
	}
	json := jsonLike(2 << 10)
	z := compressed(t, json)
	cases := []struct {
		name  string
		input []byte
		rsv1  bool
	}{
		{"text-2K-json", clientFrame(ws.OpText, true, 4, z), true},
		{"text-2K-json-fragmented", append(clientFrame(ws.OpText, false, 4, z[:len(z)/2]),
			clientFrame(ws.OpContinuation, true, 0, z[len(z)/2:])...), true},
		{"binary-64K", clientFrame(ws.OpBinary, true, 4, compressed(t, pattern(64<<10, false))), true},
		{"text-small", clientFrame(ws.OpText, true, 4, compressed(t, []byte("hello"))), false},
		{"plain-2K-json", clientFrame(ws.OpText, true, 0, json), true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := func() {
				out := fc.out
				fc.feed(tc.input)
				ev(s).OnTraffic(fc)
				if fc.out == out || (fc.last[0]&b0rsv1 != 0) != tc.rsv1 {
					t.Fatalf("#%d: echoed %d bytes, first byte %#x; want an echo with RSV1 %v", i, fc.out-out, fc.last[0], tc.rsv1)
				}
			}
			for range 100 {
				run() // warm the codecs, pools and buffers
			}
			if a := testing.AllocsPerRun(200, run); a != 0 {
				t.Fatalf("#%d: got %v allocations per message; want 0", i, a)
			}
		})
	}
}

// TestAllocsPerCompressedSend: Send from another goroutine compresses with
// a pooled Compressor into a pooled buffer: nothing allocated in steady
// state.
func TestAllocsPerCompressedSend(t *testing.T) {
	var fc *fakeConn
	done := make(chan struct{})
	go func() { // the "loop" goroutine is this one, not the test's
		defer close(done)
		s, err := New(deflateNop{}, testOptions())
		if err != nil {
			t.Error(err)
			return
		}
		fc = newFakeConn(&fakeLoop{srv: s})
		ev(s).OnOpen(fc)
		fc.feed(upgradeRequest("/ws", deflateOffer))
		ev(s).OnTraffic(fc)
	}()
	<-done
	cc, _ := fc.ctx.(*conn)
	if cc == nil || !cc.agreement().on() {
		t.Fatal("fake connection not upgraded with permessage-deflate")
	}
	c := cc.handle()
	p := jsonLike(2 << 10)
	for range 100 {
		_ = c.Send(ws.OpText, p)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if err := c.Send(ws.OpText, p); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("got %v allocations per compressed send; want 0", a)
	}
}
