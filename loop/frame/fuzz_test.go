package frame

import (
	"bytes"
	"math/rand/v2"
	"runtime/metrics"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// FuzzDecoder decodes arbitrary input and checks that the decoder never
// panics (in particular never reads past len(buf): the input is given in a
// slice whose capacity equals its length), never allocates in proportion to
// a declared length, gives the same outcome however the input is split, and
// only reports what RFC 6455 allows through.
func FuzzDecoder(f *testing.F) {
	seeds := [][]byte{
		nil,
		mf(ws.OpText, true, "Hello"),
		mf(ws.OpBinary, true, strings.Repeat("b", 300)),
		cat(mf(ws.OpText, false, "frag \xe2"), mf(ws.OpPing, true, "p"), mf(ws.OpContinuation, true, "\x82\xac")),
		cat(mf(ws.OpBinary, false, "x"), mf(ws.OpContinuation, false, "y"), mf(ws.OpContinuation, true, "z")),
		closeFrame(1000, "bye"),
		closeFrame(1005, ""),
		mf(ws.OpClose, true, "\x03"),
		mf(ws.OpPong, true, ""),
		mf(ws.OpText, true, "\xed\xa0\x80"),
		mf(ws.OpText, true, "\xf4\x90\x80\x80"),
		mf(ws.OpPing, false, ""),
		mf(ws.OpContinuation, true, ""),
		build(spec{fin: true, op: ws.OpText, unmasked: true, payload: []byte("u")}),
		build(spec{fin: true, rsv: 4, op: ws.OpText}),
		build(spec{fin: true, op: 0xb}),
		build(spec{fin: true, op: ws.OpBinary, len7: 127, ext64: 1 << 62}),
		build(spec{fin: true, op: ws.OpBinary, len7: 127, ext64: 1 << 63}),
		build(spec{fin: false, op: ws.OpText, len7: 127, ext64: 1<<29 + 7}),
		build(spec{fin: true, op: ws.OpBinary, payload: make([]byte, 65536)})[:40],
	}
	for _, s := range seeds {
		f.Add(s, uint32(0))
		f.Add(s, uint32(16))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint32) {
		// Every header form, fragmentation, the limits and the UTF-8
		// checks show in a few hundred bytes; each run decodes the input
		// four times, once byte by byte, so a large input only slows the
		// fuzzer down.
		if len(data) > 1024 {
			return
		}
		limits := Limits{MaxMessage: int64(limit)}
		if limit == 0 {
			// Large, so that a huge declared length passes the size check
			// and would show in the allocation check below.
			limits.MaxMessage = 1 << 30
		}

		heap := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(heap)
		before := heap[0].Value.Uint64()
		want, err := whole(limits, data)
		metrics.Read(heap)
		if err != nil {
			t.Fatal(err)
		}
		// The run copies the input and the payloads it reports, so it
		// allocates in proportion to the input, never to a declared length.
		// runtime/metrics counts small allocations a span at a time, hence
		// the margin; it reads in well under a microsecond, where
		// runtime.ReadMemStats stops the world and took most of each run.
		if alloc := heap[0].Value.Uint64() - before; alloc > uint64(16*len(data)+1<<20) {
			t.Fatalf("got %d bytes allocated for %d bytes of input", alloc, len(data))
		}

		for _, ev := range want.events {
			switch ev.Kind {
			case Message:
				if int64(len(ev.Payload)) > limits.MaxMessage {
					t.Fatalf("got a message of %d bytes over the limit %d", len(ev.Payload), limits.MaxMessage)
				}
				if ev.Op == ws.OpText && !utf8.ValidString(ev.Payload) {
					t.Fatalf("got text that unicode/utf8 rejects: %q", ev.Payload)
				}
			case Ping, Pong, Close:
				if len(ev.Payload) > 125 {
					t.Fatalf("got a control frame of %d bytes", len(ev.Payload))
				}
				if ev.Kind == Close && ev.Code != 1005 && (!ValidCloseCode(ev.Code) || !utf8.ValidString(ev.Reason)) {
					t.Fatalf("got close %d %q", ev.Code, ev.Reason)
				}
			}
		}

		if len(data) > 0 {
			cut := int(data[0]) * len(data) / 256
			for _, tc := range []struct {
				name    string
				cuts    []int
				realloc bool
			}{
				{"bytewise", bytewise(len(data)), false},
				{"two pieces", []int{cut}, true},
				{"three pieces", []int{cut / 2, cut}, true},
			} {
				got, err := feed(limits, data, tc.cuts, tc.realloc)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if !got.equal(want) {
					t.Fatalf("%s: got %v; want %v", tc.name, got, want)
				}
			}
		}
	})
}

// FuzzRoundTrip encodes a message with AppendFrame, as fragments of a given
// size with a ping after the first one, masks it as a client would
// (ws.Cipher) and checks that decoding gives the message back, or 1007 for
// text that is not UTF-8.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), true, uint32(0x01020304), uint16(0))
	f.Add([]byte("κόσμε, 😀"), true, uint32(0xdeadbeef), uint16(3))
	f.Add([]byte("\xff\x00\x01"), false, uint32(7), uint16(1))
	f.Add([]byte("\xed\xa0\x80"), true, uint32(0), uint16(2))
	// Fragments of 130 bytes: 16-bit lengths, then a 7-bit one.
	f.Add(bytes.Repeat([]byte("0123456789abcdef"), 20), false, uint32(99), uint16(130))
	f.Fuzz(func(t *testing.T, payload []byte, text bool, key uint32, frag uint16) {
		// The 7- and 16-bit length forms show with a few hundred bytes;
		// TestRoundTripRandom covers the 64-bit one.
		if len(payload) > 1024 {
			return
		}
		op := ws.OpBinary
		if text {
			op = ws.OpText
		}
		stream, frames := clientMessage(op, payload, key, int(frag))
		var wantEvents []rec
		if frames > 1 {
			wantEvents = append(wantEvents, none(op), ping("between"))
			for range frames - 2 {
				wantEvents = append(wantEvents, none(ws.OpContinuation))
			}
		}
		want := outcome{events: append(wantEvents, msg(op, string(payload))), err: ErrNeedMore}
		if text && !utf8.Valid(payload) {
			want = outcome{err: ErrInvalidUTF8}
		}
		got, err := whole(Limits{MaxMessage: 1 << 24}, stream)
		if err != nil {
			t.Fatal(err)
		}
		if want.err == ErrInvalidUTF8 {
			// Fragments before the bad byte may be absorbed first.
			got.events = nil
		}
		if !got.equal(want) {
			t.Fatalf("got %v; want %v", got, want)
		}
	})
}

// clientMessage encodes payload as a message of op cut in fragments of frag
// bytes (one frame if frag is 0), with a ping after the first fragment, each
// frame masked with key. It returns the stream and the number of data frames.
func clientMessage(op ws.OpCode, payload []byte, key uint32, frag int) ([]byte, int) {
	mask := [4]byte{byte(key >> 24), byte(key >> 16), byte(key >> 8), byte(key)}
	var stream []byte
	add := func(op ws.OpCode, fin bool, p []byte) {
		start := len(stream)
		stream = AppendFrame(stream, op, fin, p)
		// Insert the masking key after the header and mask the payload.
		hl := HeaderLen(len(p))
		stream = append(stream[:start+hl], append(mask[:], stream[start+hl:]...)...)
		stream[start+1] |= maskBit
		ws.Cipher(stream[start+hl+4:], mask, 0)
	}
	if frag <= 0 || frag >= len(payload) {
		add(op, true, payload)
		return stream, 1
	}
	frames := 0
	for off := 0; off < len(payload); off += frag {
		end := min(off+frag, len(payload))
		cur := ws.OpContinuation
		if off == 0 {
			cur = op
		}
		add(cur, end == len(payload), payload[off:end])
		frames++
		if off == 0 {
			add(ws.OpPing, true, []byte("between"))
		}
	}
	return stream, frames
}

// FuzzUTF8 compares UTF8Validator, fed in three pieces, with unicode/utf8.
func FuzzUTF8(f *testing.F) {
	for _, tc := range utf8Cases {
		f.Add([]byte(tc.in), uint8(1), uint8(2))
	}
	f.Fuzz(func(t *testing.T, p []byte, a, b uint8) {
		// The cuts fall in the first 255 bytes and the validator's ASCII
		// path takes blocks of 32: longer inputs add nothing.
		if len(p) > 512 {
			return
		}
		i, j := min(int(a), len(p)), min(int(b), len(p))
		if i > j {
			i, j = j, i
		}
		var v UTF8Validator
		got := v.Write(p[:i]) && v.Write(p[i:j]) && v.Write(p[j:]) && v.Complete()
		if want := utf8.Valid(p); got != want {
			t.Fatalf("%q cut at %d, %d: got %v; want %v", p, i, j, got, want)
		}
		if ValidUTF8(p) != got {
			t.Fatalf("%q: got ValidUTF8 %v; want %v", p, !got, got)
		}
	})
}

// TestRoundTripRandom is the round trip of FuzzRoundTrip over random
// messages: text and binary, every length encoding, random masks and
// fragment sizes.
func TestRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	runes := []rune("aZ09 ~éß€κ😀\u07ff\u0800\uffff\U0010ffff")
	for i := range 400 {
		n := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}[i%8]
		if i >= 8 {
			n = rng.IntN(3000)
		}
		text := i%2 == 0
		var payload []byte
		if text {
			for len(payload) < n {
				payload = utf8.AppendRune(payload, runes[rng.IntN(len(runes))])
			}
		} else {
			payload = make([]byte, n)
			for j := range payload {
				payload[j] = byte(rng.Uint32())
			}
		}
		frag := 0
		if i%3 != 0 && len(payload) > 0 {
			frag = 1 + rng.IntN(len(payload))
		}
		op := ws.OpBinary
		if text {
			op = ws.OpText
		}
		stream, _ := clientMessage(op, payload, rng.Uint32(), frag)
		got, err := whole(Limits{MaxMessage: 1 << 24}, stream)
		if err != nil {
			t.Fatal(err)
		}
		if got.err != ErrNeedMore || got.rest != 0 || len(got.events) == 0 {
			t.Fatalf("#%d: got %v; want the message", i, got)
		}
		if last := got.events[len(got.events)-1]; last.Kind != Message || last.Op != op || last.Payload != string(payload) {
			t.Fatalf("#%d: got %v; want %s message of %d bytes", i, last, op2s(op), len(payload))
		}
	}
}

func op2s(op ws.OpCode) string {
	if op == ws.OpText {
		return "text"
	}
	return "binary"
}
