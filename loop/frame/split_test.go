package frame

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// splitStreams are streams of several frames, valid and invalid, that the
// split tests feed in every possible way.
func splitStreams() []struct {
	name   string
	limits Limits
	stream []byte
} {
	bin300 := make([]byte, 300)
	for i := range bin300 {
		bin300[i] = byte(i)
	}
	valid := cat(
		mf(ws.OpText, true, "Hello, 世界"),
		build(spec{fin: true, op: ws.OpBinary, payload: bin300}),
		mf(ws.OpText, false, "κόσ\xce"), // μ split across fragments
		mf(ws.OpPing, true, "are you there?"),
		mf(ws.OpContinuation, false, "\xbcε \xf0\x9f"), // 😀 split across fragments
		mf(ws.OpPong, true, ""),
		mf(ws.OpContinuation, true, "\x98\x80!"),
		mf(ws.OpBinary, false, "\x00\x01"),
		mf(ws.OpPing, true, ""),
		mf(ws.OpContinuation, true, "\xff"),
		mf(ws.OpText, true, strings.Repeat("ascii and ünïcödé ", 12)),
		closeFrame(1000, "bye"),
	)
	return []struct {
		name   string
		limits Limits
		stream []byte
	}{
		{name: "valid", stream: valid},
		{name: "valid then partial", stream: cat(valid, mf(ws.OpText, true, "cut short")[:9])},
		{
			name: "invalid UTF-8 in a continuation",
			stream: cat(mf(ws.OpText, true, "ok"), mf(ws.OpText, false, "abc\xe2\x82"),
				mf(ws.OpPing, true, "x"), mf(ws.OpContinuation, true, "\xac\xac tail")),
		},
		{
			name:   "invalid UTF-8 mid frame",
			stream: cat(mf(ws.OpBinary, true, "b"), mf(ws.OpText, true, strings.Repeat("é", 40)+"\xc1\x81"+strings.Repeat("z", 50))),
		},
		{
			name:   "unmasked after valid frames",
			stream: cat(mf(ws.OpPing, true, "p"), build(spec{fin: true, op: ws.OpText, unmasked: true, payload: []byte("plain")})),
		},
		{
			name:   "too big after a fragment",
			limits: Limits{MaxMessage: 64},
			stream: cat(mf(ws.OpBinary, false, strings.Repeat("1", 40)), mf(ws.OpPong, true, "q"),
				mf(ws.OpContinuation, true, strings.Repeat("2", 30))),
		},
		{
			name:   "bad close code",
			stream: cat(mf(ws.OpText, true, "before"), closeFrame(1016, "")),
		},
	}
}

// TestSplitEveryPoint feeds each stream cut in two at every offset, one byte
// at a time and at random cuts: the outcome must be the one of feeding it
// whole. The unread bytes move to a new array between calls, as a growing
// inbound buffer may.
func TestSplitEveryPoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i, s := range splitStreams() {
		want, err := whole(s.limits, s.stream)
		if err != nil {
			t.Fatalf("#%d %s: %v", i, s.name, err)
		}
		if len(want.events) < 1 {
			t.Fatalf("#%d %s: got no events from the whole stream", i, s.name)
		}
		check := func(how string, cuts []int) {
			t.Helper()
			got, err := feed(s.limits, s.stream, cuts, true)
			if err != nil {
				t.Fatalf("#%d %s (%s): %v", i, s.name, how, err)
			}
			if !got.equal(want) {
				t.Fatalf("#%d %s (%s): got %v; want %v", i, s.name, how, got, want)
			}
		}
		for cut := 0; cut <= len(s.stream); cut++ {
			check("split at "+strconv.Itoa(cut), []int{cut})
		}
		check("bytewise", bytewise(len(s.stream)))
		for range 200 {
			a, b := rng.IntN(len(s.stream)+1), rng.IntN(len(s.stream)+1)
			c := rng.IntN(len(s.stream) + 1)
			cuts := []int{a, b, c}
			slices.Sort(cuts)
			check("random cuts "+strconv.Itoa(a)+","+strconv.Itoa(b)+","+strconv.Itoa(c), cuts)
		}
	}
}

// TestSplitLinearWork feeds large frames one byte at a time and checks that
// every payload byte is unmasked and UTF-8 checked exactly once: resumed
// calls do not redo work, so the total stays O(n).
func TestSplitLinearWork(t *testing.T) {
	big := []byte(strings.Repeat("linear work, ça va, 😀 ", 3000)) // > 64 KiB: 64-bit length
	third := len(big) / 3
	for i, tc := range []struct {
		name   string
		stream []byte
		events int
		other  int // payload bytes of control frames
	}{
		{"single text frame", build(spec{fin: true, op: ws.OpText, payload: big}), 1, 0},
		{
			"fragmented text, cut inside code points",
			cat(build(spec{op: ws.OpText, payload: big[:third+1]}),
				mf(ws.OpPing, true, "mid"),
				build(spec{op: ws.OpContinuation, payload: big[third+1 : 2*third+2]}),
				build(spec{fin: true, op: ws.OpContinuation, payload: big[2*third+2:]})),
			4,
			len("mid"),
		},
	} {
		limits := Limits{MaxMessage: 1 << 20}
		want, err := whole(limits, tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		var d Decoder
		d.Init(limits)
		got, err := feedWith(&d, tc.stream, bytewise(len(tc.stream)), false)
		if err != nil {
			t.Fatalf("#%d %s: %v", i, tc.name, err)
		}
		if !got.equal(want) || len(got.events) != tc.events || got.rest != 0 {
			t.Fatalf("#%d %s: got %v; want %v", i, tc.name, got, want)
		}
		if last := got.events[len(got.events)-1]; last.Payload != string(big) {
			t.Errorf("#%d %s: got a message that differs from the one sent", i, tc.name)
		}
		payload := int64(len(big) + tc.other)
		if d.unmasked != payload {
			t.Errorf("#%d %s: got %d payload bytes unmasked; want %d, each once", i, tc.name, d.unmasked, payload)
		}
		d.Release()
	}
}
