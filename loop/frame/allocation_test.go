//go:build !race

package frame

import (
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// The race detector allocates on its own, so these tests run without it.

// TestAllocsDecode: unmasking, UTF-8 checking and reporting a masked 128-byte
// text frame allocates nothing.
func TestAllocsDecode(t *testing.T) {
	frame := mf(ws.OpText, true, strings.Repeat("héllo wörld, ", 10)[:128])
	buf := make([]byte, len(frame))
	var d Decoder
	d.Init(Limits{})
	bad := false
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, frame)
		ev, n, err := d.Next(buf)
		if err != nil || n != len(buf) || ev.Kind != Message || len(ev.Payload) != 128 {
			bad = true
		}
	})
	if bad {
		t.Fatalf("got a decoding failure; want the message")
	}
	if allocs != 0 {
		t.Errorf("got %v allocations per frame; want 0", allocs)
	}
}

// TestAllocsEncode: encoding an echo frame into a reused buffer allocates
// nothing, nor does a close frame.
func TestAllocsEncode(t *testing.T) {
	payload := []byte(strings.Repeat("e", 128))
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(1000, func() {
		dst = AppendFrame(dst[:0], ws.OpText, true, payload)
		dst = AppendClose(dst[:0], ws.StatusGoingAway, "shutting down")
		var h [MaxHeaderLen]byte
		_ = PutHeader(&h, ws.OpBinary, true, 70000)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per encode; want 0", allocs)
	}
}

// TestAllocsFragmented: once the pool holds a buffer, a fragmented message
// with a ping in the middle allocates nothing.
func TestAllocsFragmented(t *testing.T) {
	stream := cat(mf(ws.OpText, false, strings.Repeat("a", 300)), mf(ws.OpPing, true, "p"),
		mf(ws.OpContinuation, false, strings.Repeat("ü", 100)), mf(ws.OpContinuation, true, "end"))
	buf := make([]byte, len(stream))
	var d Decoder
	d.Init(Limits{})
	defer d.Release()
	bad := false
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, stream)
		in := buf
		events := 0
		for {
			ev, n, err := d.Next(in)
			if err == ErrNeedMore {
				break
			}
			if err != nil {
				bad = true
				return
			}
			in = in[n:]
			if ev.Kind == Message {
				events++
				if len(ev.Payload) != 300+200+3 {
					bad = true
				}
			}
		}
		if events != 1 || len(in) != 0 {
			bad = true
		}
	})
	if bad {
		t.Fatalf("got a decoding failure; want the message")
	}
	if allocs != 0 {
		t.Errorf("got %v allocations per message; want 0", allocs)
	}
}

// TestAllocsHugeLength: rejecting a frame that declares 1<<62 bytes
// allocates nothing.
func TestAllocsHugeLength(t *testing.T) {
	hdr := build(spec{fin: true, op: ws.OpBinary, len7: 127, ext64: 1 << 62})
	var d Decoder
	bad := false
	allocs := testing.AllocsPerRun(1000, func() {
		d.Init(Limits{MaxMessage: 1 << 10})
		if _, _, err := d.Next(hdr[:10]); err != ErrMessageTooBig {
			bad = true
		}
	})
	if bad {
		t.Fatalf("got no ErrMessageTooBig")
	}
	if allocs != 0 {
		t.Errorf("got %v allocations; want 0", allocs)
	}
}
