package frame

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// TestDecoderRules checks every rule of the decoder with the close code it
// fails with. Each stream is also fed one byte at a time, which must give
// the same outcome.
func TestDecoderRules(t *testing.T) {
	const (
		text   = ws.OpText
		binary = ws.OpBinary
		cont   = ws.OpContinuation
	)
	tooLong := strings.Repeat("x", 126)
	max125 := strings.Repeat("x", 125)
	for i, tc := range []struct {
		name   string
		limits Limits
		stream []byte
		want   []rec
		err    error // nil: the stream ends cleanly (ErrNeedMore, nothing left)
		code   ws.StatusCode
	}{
		{
			name:   "text",
			stream: mf(text, true, "Hello"),
			want:   []rec{msg(text, "Hello")},
		},
		{
			name:   "empty binary",
			stream: mf(binary, true, ""),
			want:   []rec{msg(binary, "")},
		},
		{
			name:   "binary is not UTF-8 checked",
			stream: mf(binary, true, "\xff\xfe\xc0"),
			want:   []rec{msg(binary, "\xff\xfe\xc0")},
		},
		{
			name:   "unmasked frame",
			stream: build(spec{fin: true, op: text, unmasked: true, payload: []byte("hi")}),
			err:    ErrUnmaskedFrame,
			code:   1002,
		},
		{
			name:   "unmasked after a valid frame",
			stream: cat(mf(text, true, "a"), build(spec{fin: true, op: binary, unmasked: true})),
			want:   []rec{msg(text, "a")},
			err:    ErrUnmaskedFrame,
			code:   1002,
		},
		{
			name:   "RSV1 without extension",
			stream: build(spec{fin: true, rsv: 4, op: text, payload: []byte("x")}),
			err:    ErrReservedBits,
			code:   1002,
		},
		{
			name:   "RSV2 without extension",
			stream: build(spec{fin: true, rsv: 2, op: binary}),
			err:    ErrReservedBits,
			code:   1002,
		},
		{
			name:   "RSV3 on ping",
			stream: build(spec{fin: true, rsv: 1, op: ws.OpPing}),
			err:    ErrReservedBits,
			code:   1002,
		},
		{
			name:   "RSV1 allowed by limits",
			limits: Limits{AllowedRSV: ws.Rsv(true, false, false)},
			stream: build(spec{fin: true, rsv: 4, op: text, payload: []byte("z")}),
			want:   []rec{{Kind: Message, Op: text, Rsv: 4, Payload: "z"}},
		},
		{
			name:   "RSV1 of the first fragment reported for the message",
			limits: Limits{AllowedRSV: 4},
			stream: cat(build(spec{rsv: 4, op: binary, payload: []byte("a")}), mf(cont, true, "b")),
			want:   []rec{none(binary), {Kind: Message, Op: binary, Rsv: 4, Payload: "ab"}},
		},
		{
			name:   "RSV1 allowed on the first frame, not on a continuation",
			limits: Limits{AllowedRSV: 4},
			stream: cat(build(spec{rsv: 4, op: binary, payload: []byte("a")}), build(spec{fin: true, rsv: 4, op: cont, payload: []byte("b")})),
			want:   []rec{none(binary)},
			err:    ErrReservedBits,
			code:   1002,
		},
		{
			name:   "RSV1 allowed on data frames, not on a ping",
			limits: Limits{AllowedRSV: 4},
			stream: build(spec{fin: true, rsv: 4, op: ws.OpPing}),
			err:    ErrReservedBits,
			code:   1002,
		},
		{
			name:   "RSV1 allowed on data frames, not on a close",
			limits: Limits{AllowedRSV: 4},
			stream: build(spec{fin: true, rsv: 4, op: ws.OpClose, payload: []byte{3, 232}}),
			err:    ErrReservedBits,
			code:   1002,
		},
		{
			name:   "text with RSV1 is not checked as UTF-8",
			limits: Limits{AllowedRSV: 4},
			stream: build(spec{fin: true, rsv: 4, op: text, payload: []byte{0xff, 0xc0}}),
			want:   []rec{{Kind: Message, Op: text, Rsv: 4, Payload: "\xff\xc0"}},
		},
		{
			name:   "fragmented text with RSV1 is not checked as UTF-8",
			limits: Limits{AllowedRSV: 4},
			stream: cat(build(spec{rsv: 4, op: text, payload: []byte{0xff}}), mf(cont, true, "\xc0")),
			want:   []rec{none(text), {Kind: Message, Op: text, Rsv: 4, Payload: "\xff\xc0"}},
		},
		{
			name:   "text without RSV1 is still checked when RSV1 is allowed",
			limits: Limits{AllowedRSV: 4},
			stream: cat(mf(text, false, "a"), mf(cont, true, "\xff")),
			want:   []rec{none(text)},
			err:    ErrInvalidUTF8,
			code:   1007,
		},
		{
			name:   "RSV2 not allowed when RSV1 is",
			limits: Limits{AllowedRSV: 4},
			stream: build(spec{fin: true, rsv: 2, op: text}),
			err:    ErrReservedBits,
			code:   1002,
		},
		{name: "opcode 3", stream: build(spec{fin: true, op: 3}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode 4", stream: build(spec{fin: true, op: 4}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode 5", stream: build(spec{fin: true, op: 5}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode 6", stream: build(spec{fin: true, op: 6}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode 7", stream: build(spec{fin: true, op: 7}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode B", stream: build(spec{fin: true, op: 0xb}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode C", stream: build(spec{fin: true, op: 0xc}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode D", stream: build(spec{fin: true, op: 0xd}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode E", stream: build(spec{fin: true, op: 0xe}), err: ErrReservedOpcode, code: 1002},
		{name: "opcode F", stream: build(spec{fin: true, op: 0xf}), err: ErrReservedOpcode, code: 1002},
		{
			name:   "reserved opcode inside a fragmented message",
			stream: cat(mf(text, false, "a"), build(spec{fin: true, op: 0xb})),
			want:   []rec{none(text)},
			err:    ErrReservedOpcode,
			code:   1002,
		},
		{
			name:   "ping with 125 bytes",
			stream: mf(ws.OpPing, true, max125),
			want:   []rec{ping(max125)},
		},
		{
			name:   "ping with 126 bytes",
			stream: mf(ws.OpPing, true, tooLong),
			err:    ErrControlTooLong,
			code:   1002,
		},
		{
			name:   "close with a 64-bit length",
			stream: build(spec{fin: true, op: ws.OpClose, len7: 127, ext64: 2}),
			err:    ErrControlTooLong,
			code:   1002,
		},
		{
			name:   "pong with 126 bytes",
			stream: mf(ws.OpPong, true, tooLong),
			err:    ErrControlTooLong,
			code:   1002,
		},
		{
			name:   "fragmented ping",
			stream: mf(ws.OpPing, false, "p"),
			err:    ErrFragmentedControl,
			code:   1002,
		},
		{
			name:   "fragmented close",
			stream: mf(ws.OpClose, false, ""),
			err:    ErrFragmentedControl,
			code:   1002,
		},
		{
			name:   "continuation without a message",
			stream: mf(cont, true, "x"),
			err:    ErrUnexpectedContinuation,
			code:   1002,
		},
		{
			name:   "continuation after a complete message",
			stream: cat(mf(text, false, "a"), mf(cont, true, "b"), mf(cont, true, "c")),
			want:   []rec{none(text), msg(text, "ab")},
			err:    ErrUnexpectedContinuation,
			code:   1002,
		},
		{
			name:   "text while a text message is open",
			stream: cat(mf(text, false, "a"), mf(text, true, "b")),
			want:   []rec{none(text)},
			err:    ErrExpectedContinuation,
			code:   1002,
		},
		{
			name:   "text while a binary message is open",
			stream: cat(mf(binary, false, "a"), mf(text, false, "b")),
			want:   []rec{none(binary)},
			err:    ErrExpectedContinuation,
			code:   1002,
		},
		{
			name: "fragments with interleaved control frames",
			stream: cat(mf(text, false, "Hel"), mf(ws.OpPing, true, "p1"),
				mf(cont, false, "lo, "), mf(ws.OpPong, true, ""), mf(cont, false, ""),
				mf(ws.OpPing, true, ""), mf(cont, true, "world")),
			want: []rec{none(text), ping("p1"), none(cont), pong(""), none(cont),
				ping(""), msg(text, "Hello, world")},
		},
		{
			name:   "empty fragments",
			stream: cat(mf(binary, false, ""), mf(cont, false, ""), mf(cont, true, "")),
			want:   []rec{none(binary), none(cont), msg(binary, "")},
		},
		{
			name:   "64-bit length with the most significant bit set",
			stream: build(spec{fin: true, op: binary, len7: 127, ext64: 1 << 63}),
			err:    ErrLengthOverflow,
			code:   1002,
		},
		{
			name:   "close without payload",
			stream: mf(ws.OpClose, true, ""),
			want:   []rec{closeEv(1005, "", "")},
		},
		{
			name:   "close with code",
			stream: closeFrame(1000, ""),
			want:   []rec{closeEv(1000, "\x03\xe8", "")},
		},
		{
			name:   "close with code and reason",
			stream: closeFrame(4321, "au revoir, κόσμε"),
			want:   []rec{closeEv(4321, "\x10\xe1au revoir, κόσμε", "au revoir, κόσμε")},
		},
		{
			name:   "close with 1-byte payload",
			stream: mf(ws.OpClose, true, "\x03"),
			err:    ErrCloseLength,
			code:   1002,
		},
		{
			name:   "close with code 1005 on the wire",
			stream: closeFrame(1005, ""),
			err:    ErrCloseCode,
			code:   1002,
		},
		{
			name:   "close with code 999",
			stream: closeFrame(999, "x"),
			err:    ErrCloseCode,
			code:   1002,
		},
		{
			name:   "close with reason not UTF-8",
			stream: closeFrame(1000, "bad \xce"),
			err:    ErrCloseReasonUTF8,
			code:   1007,
		},
		{
			name:   "close with surrogate in reason",
			stream: closeFrame(1001, "\xed\xa0\x80"),
			err:    ErrCloseReasonUTF8,
			code:   1007,
		},
		{
			name:   "close between fragments of a text message",
			stream: cat(mf(text, false, "\xce"), closeFrame(1000, "\xce\xba"), mf(cont, true, "\xba")),
			want:   []rec{none(text), closeEv(1000, "\x03\xe8\xce\xba", "κ"), msg(text, "κ")},
		},
		{
			name:   "invalid UTF-8 in text",
			stream: mf(text, true, "ab\xffcd"),
			err:    ErrInvalidUTF8,
			code:   1007,
		},
		{
			name:   "truncated code point at the end of a text frame",
			stream: mf(text, true, "ab\xe2\x82"),
			err:    ErrInvalidUTF8,
			code:   1007,
		},
		{
			name:   "code point split across fragments",
			stream: cat(mf(text, false, "\xe2"), mf(cont, false, "\x82"), mf(cont, true, "\xac!")),
			want:   []rec{none(text), none(cont), msg(text, "€!")},
		},
		{
			name:   "truncated code point at the end of a fragmented text",
			stream: cat(mf(text, false, "ok"), mf(cont, true, "\xf0\x9f\x98")),
			want:   []rec{none(text)},
			err:    ErrInvalidUTF8,
			code:   1007,
		},
		{
			name:   "invalid UTF-8 in a continuation",
			stream: cat(mf(text, false, "ok"), mf(cont, false, "\xed\xa0\x80")),
			want:   []rec{none(text)},
			err:    ErrInvalidUTF8,
			code:   1007,
		},
		{
			name:   "binary continuation is not UTF-8 checked",
			stream: cat(mf(binary, false, "\xff"), mf(cont, true, "\xe2")),
			want:   []rec{none(binary), msg(binary, "\xff\xe2")},
		},
		{
			name:   "message at the limit",
			limits: Limits{MaxMessage: 10},
			stream: cat(mf(text, true, "0123456789"), mf(binary, false, "01234"), mf(cont, true, "56789")),
			want:   []rec{msg(text, "0123456789"), none(binary), msg(binary, "0123456789")},
		},
		{
			name:   "single frame over the limit",
			limits: Limits{MaxMessage: 10},
			stream: mf(binary, true, "0123456789A"),
			err:    ErrMessageTooBig,
			code:   1009,
		},
		{
			name:   "fragments over the limit",
			limits: Limits{MaxMessage: 10},
			stream: cat(mf(text, false, "012345"), mf(cont, false, "6789"), mf(cont, true, "A")),
			want:   []rec{none(text), none(cont)},
			err:    ErrMessageTooBig,
			code:   1009,
		},
		{
			name:   "control frames are not counted against the limit",
			limits: Limits{MaxMessage: 10},
			stream: cat(mf(text, false, "01234"), mf(ws.OpPing, true, max125), mf(cont, true, "56789")),
			want:   []rec{none(text), ping(max125), msg(text, "0123456789")},
		},
		{
			name:   "partial frame at the end",
			stream: cat(mf(text, true, "a"), mf(text, true, "bcd")[:5]),
			want:   []rec{msg(text, "a")},
			err:    ErrNeedMore,
		},
	} {
		wantErr := tc.err
		if wantErr == nil {
			wantErr = ErrNeedMore
		}
		for _, mode := range []string{"whole", "bytewise"} {
			var cuts []int
			if mode == "bytewise" {
				cuts = bytewise(len(tc.stream))
			}
			got, err := feed(tc.limits, tc.stream, cuts, true)
			if err != nil {
				t.Fatalf("#%d %s (%s): %v", i, tc.name, mode, err)
			}
			if !slices.Equal(got.events, tc.want) {
				t.Errorf("#%d %s (%s): got events %v; want %v", i, tc.name, mode, got.events, tc.want)
			}
			if got.err != wantErr {
				t.Errorf("#%d %s (%s): got error %v; want %v", i, tc.name, mode, got.err, wantErr)
			}
			if code := CodeOf(got.err); code != tc.code {
				t.Errorf("#%d %s (%s): got close code %d; want %d", i, tc.name, mode, code, tc.code)
			}
			if tc.err == nil && got.rest != 0 {
				t.Errorf("#%d %s (%s): got %d bytes left; want 0", i, tc.name, mode, got.rest)
			}
		}
	}
}

// TestDecoderLengths decodes frames of every length encoding (§5.2) and
// checks the zero-copy view of the payload.
func TestDecoderLengths(t *testing.T) {
	for i, tc := range []struct {
		length int
		hdr    int
	}{
		{0, 6}, {1, 6}, {125, 6}, {126, 8}, {127, 8}, {65535, 8}, {65536, 14}, {3 << 20, 14},
	} {
		payload := make([]byte, tc.length)
		for j := range payload {
			payload[j] = byte(j*7 + j>>8)
		}
		buf := build(spec{fin: true, op: ws.OpBinary, payload: payload})
		if len(buf) != tc.hdr+tc.length {
			t.Fatalf("#%d: got frame of %d bytes; want %d", i, len(buf), tc.hdr+tc.length)
		}
		var d Decoder
		d.Init(Limits{MaxMessage: 4 << 20})
		ev, n, err := d.Next(buf)
		if err != nil || n != len(buf) || ev.Kind != Message || ev.Op != ws.OpBinary {
			t.Fatalf("#%d: got %v, %d, %v; want Message, %d, nil", i, ev.Kind, n, err, len(buf))
		}
		if !bytes.Equal(ev.Payload, payload) {
			t.Errorf("#%d: got payload that differs from the one sent", i)
		}
		if tc.length > 0 && &ev.Payload[0] != &buf[tc.hdr] {
			t.Errorf("#%d: got a payload copy; want a view into buf at %d", i, tc.hdr)
		}
		if cap(ev.Payload) != len(ev.Payload) {
			t.Errorf("#%d: got payload cap %d; want %d", i, cap(ev.Payload), len(ev.Payload))
		}
		h, hn, err := ParseHeader(buf)
		if err != nil || hn != tc.hdr || h.Length != int64(tc.length) || !h.Masked || h.Mask != testMask {
			t.Errorf("#%d: got ParseHeader %+v, %d, %v; want length %d in %d bytes", i, h, hn, err, tc.length, tc.hdr)
		}
		// Every proper prefix of the frame needs more.
		for _, cut := range []int{0, 1, tc.hdr - 5, tc.hdr - 1, len(buf) - 1} {
			if cut < 0 || cut >= len(buf) {
				continue
			}
			var d Decoder
			d.Init(Limits{MaxMessage: 4 << 20})
			b := build(spec{fin: true, op: ws.OpBinary, payload: payload})[:cut]
			if _, n, err := d.Next(b[:cut:cut]); err != ErrNeedMore || n != 0 {
				t.Errorf("#%d: got %d, %v with %d bytes; want 0, ErrNeedMore", i, n, err, cut)
			}
		}
	}
}

// TestDecoderFailFast: a text frame that declares 1000 bytes fails with 1007
// as soon as its first, invalid, payload bytes arrive (§8.1).
func TestDecoderFailFast(t *testing.T) {
	for i, tc := range []struct {
		prefix string // payload bytes sent before the frame's end
		bad    int    // payload bytes present when the error must show
	}{
		{"\xff", 1},
		{"\xc0\xaf", 1},
		{"hello \xed\xa0\x80", 8}, // surrogate: fails at its second byte
		{"κόσμε\xf4\x90\x80\x80", len("κόσμε") + 2}, // above U+10FFFF: fails at its second byte
		{strings.Repeat("a", 500) + "\x80", 501},
	} {
		payload := []byte(tc.prefix + strings.Repeat("z", 1000-len(tc.prefix)))
		frame := build(spec{fin: true, op: ws.OpText, payload: payload})
		const hdr = 8
		var d Decoder
		for have := 0; have <= hdr+tc.bad; have++ {
			_, n, err := d.Next(frame[:have:have])
			if have < hdr+tc.bad {
				if err != ErrNeedMore || n != 0 {
					t.Fatalf("#%d: got %d, %v with %d bytes; want 0, ErrNeedMore", i, n, err, have)
				}
				continue
			}
			if err != ErrInvalidUTF8 || CodeOf(err) != 1007 {
				t.Errorf("#%d: got %v (code %d) with %d of %d bytes; want ErrInvalidUTF8 (1007)",
					i, err, CodeOf(err), have, len(frame))
			}
		}
		// The same with all the bad bytes arriving at once, after the header
		// (on a fresh copy: the first decoder unmasked the bytes it saw).
		frame = build(spec{fin: true, op: ws.OpText, payload: payload})
		var d2 Decoder
		if _, _, err := d2.Next(frame[:hdr]); err != ErrNeedMore {
			t.Fatalf("#%d: got %v for the header alone; want ErrNeedMore", i, err)
		}
		if _, _, err := d2.Next(frame[:hdr+len(tc.prefix)]); err != ErrInvalidUTF8 {
			t.Errorf("#%d: got %v; want ErrInvalidUTF8", i, err)
		}
	}
}

// TestDecoderHugeLength: a frame declaring 1<<62 bytes fails with 1009 from
// its header alone, before the masking key, and nothing is allocated for it.
func TestDecoderHugeLength(t *testing.T) {
	frames := [][]byte{
		build(spec{fin: true, op: ws.OpBinary, len7: 127, ext64: 1 << 62}),
		build(spec{fin: false, op: ws.OpText, len7: 127, ext64: 1 << 62}),
		build(spec{fin: true, op: ws.OpBinary, len7: 127, ext64: 1<<63 - 1}),
	}
	for i, f := range frames {
		for _, have := range []int{10, 14, len(f)} {
			var d Decoder
			d.Init(Limits{MaxMessage: 1 << 16})
			_, n, err := d.Next(f[:have:have])
			if err != ErrMessageTooBig || n != 0 || CodeOf(err) != 1009 {
				t.Errorf("#%d: got %d, %v with %d bytes; want 0, ErrMessageTooBig (1009)", i, n, err, have)
			}
		}
	}
	// A continuation that would take the message over the limit.
	stream := cat(mf(ws.OpBinary, false, strings.Repeat("b", 100)),
		build(spec{fin: true, op: ws.OpContinuation, len7: 127, ext64: 1 << 62}))
	got, err := whole(Limits{MaxMessage: 1 << 16}, stream[:len(stream)-4])
	if err != nil {
		t.Fatal(err)
	}
	if got.err != ErrMessageTooBig || len(got.events) != 1 {
		t.Errorf("got %v; want one event and ErrMessageTooBig", got)
	}
	// With the default limit.
	var d Decoder
	if _, _, err := d.Next(frames[0][:10]); err != ErrMessageTooBig {
		t.Errorf("got %v with the default limit; want ErrMessageTooBig", err)
	}
}

// TestDecoderStickyAndRelease: an error stays until Release; after Release
// the decoder starts afresh with its limits.
func TestDecoderStickyAndRelease(t *testing.T) {
	var d Decoder
	d.Init(Limits{MaxMessage: 4})
	bad := build(spec{fin: true, op: ws.OpText, unmasked: true})
	for i := range 3 {
		if _, _, err := d.Next(bad); err != ErrUnmaskedFrame {
			t.Fatalf("#%d: got %v; want ErrUnmaskedFrame", i, err)
		}
	}
	d.Release()
	good := mf(ws.OpText, true, "ok")
	if ev, n, err := d.Next(good); err != nil || n != len(good) || string(ev.Payload) != "ok" {
		t.Fatalf("got %v, %d, %v after Release; want the message", record(ev), n, err)
	}
	if _, _, err := d.Next(mf(ws.OpText, true, "12345")); err != ErrMessageTooBig {
		t.Fatalf("got %v; want ErrMessageTooBig: Release keeps the limits", err)
	}
	// Release in the middle of a fragmented message returns its buffer.
	d.Init(Limits{})
	if _, _, err := d.Next(mf(ws.OpText, false, "part")); err != nil || d.asm == nil {
		t.Fatalf("got %v, buffer %v; want a fragment absorbed", err, d.asm)
	}
	d.Release()
	if d.asm != nil || d.msgOp != 0 {
		t.Fatalf("got buffer %v, open message %d after Release; want none", d.asm, d.msgOp)
	}
}

// TestDecoderShortBuffer: a caller that gives fewer bytes than before gets
// ErrNeedMore, not a panic.
func TestDecoderShortBuffer(t *testing.T) {
	f := mf(ws.OpBinary, true, strings.Repeat("q", 300))
	var d Decoder
	if _, _, err := d.Next(f[:100]); err != ErrNeedMore {
		t.Fatalf("got %v; want ErrNeedMore", err)
	}
	for i, have := range []int{0, 3, 50} {
		if _, n, err := d.Next(f[:have]); err != ErrNeedMore || n != 0 {
			t.Errorf("#%d: got %d, %v with %d bytes; want 0, ErrNeedMore", i, n, err, have)
		}
	}
}

func TestCodeOfAndKind(t *testing.T) {
	for i, tc := range []struct {
		err  error
		want ws.StatusCode
	}{
		{nil, 0},
		{ErrNeedMore, 0},
		{errors.New("other"), 0},
		{ErrUnmaskedFrame, 1002},
		{ErrInvalidUTF8, 1007},
		{ErrMessageTooBig, 1009},
		{&ProtocolError{Code: 1008, Reason: "policy"}, 1008},
	} {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("#%d: got %d; want %d", i, got, tc.want)
		}
	}
	if got, want := ErrUnmaskedFrame.Error(), "frame: unmasked client frame"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	for i, tc := range []struct {
		k    Kind
		want string
	}{{None, "None"}, {Message, "Message"}, {Ping, "Ping"}, {Pong, "Pong"}, {Close, "Close"}, {9, "Kind(?)"}} {
		if got := tc.k.String(); got != tc.want {
			t.Errorf("#%d: got %q; want %q", i, got, tc.want)
		}
	}
}
