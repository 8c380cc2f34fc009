package frame

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

func TestHeaderEncoding(t *testing.T) {
	type headerCase struct {
		op   ws.OpCode
		fin  bool
		n    int
		want []byte
	}
	cases := []headerCase{
		{ws.OpText, true, 0, []byte{0x81, 0}},
		{ws.OpBinary, true, 1, []byte{0x82, 1}},
		{ws.OpText, false, 125, []byte{0x01, 125}},
		{ws.OpContinuation, true, 126, []byte{0x80, 126, 0, 126}},
		{ws.OpContinuation, false, 127, []byte{0x00, 126, 0, 127}},
		{ws.OpBinary, true, 65535, []byte{0x82, 126, 0xff, 0xff}},
		{ws.OpBinary, true, 65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{ws.OpText, true, math.MaxInt32, []byte{0x81, 127, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}},
		{ws.OpPing, true, 4, []byte{0x89, 4}},
		{ws.OpPong, true, 125, []byte{0x8a, 125}},
		{ws.OpClose, true, 2, []byte{0x88, 2}},
	}
	if strconv.IntSize == 64 {
		// A length beyond 32 bits, which only a 64-bit int holds.
		n := uint64(1)<<32 + 5
		cases = append(cases, headerCase{ws.OpText, true, int(n), []byte{0x81, 127, 0, 0, 0, 1, 0, 0, 0, 5}})
	}
	for i, tc := range cases {
		if got := HeaderLen(tc.n); got != len(tc.want) {
			t.Errorf("#%d: got HeaderLen %d; want %d", i, got, len(tc.want))
		}
		if got := AppendHeader([]byte("pre"), tc.op, tc.fin, tc.n); !bytes.Equal(got, append([]byte("pre"), tc.want...)) {
			t.Errorf("#%d: got AppendHeader % x; want % x", i, got[3:], tc.want)
		}
		var h [MaxHeaderLen]byte
		if n := PutHeader(&h, tc.op, tc.fin, tc.n); !bytes.Equal(h[:n], tc.want) {
			t.Errorf("#%d: got PutHeader % x; want % x", i, h[:n], tc.want)
		}
		// The same bytes as gobwas/ws writes for the header.
		var w bytes.Buffer
		if err := ws.WriteHeader(&w, ws.Header{Fin: tc.fin, OpCode: tc.op, Length: int64(tc.n)}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w.Bytes(), tc.want) {
			t.Errorf("#%d: got % x from ws.WriteHeader; want % x", i, w.Bytes(), tc.want)
		}
		// And it parses back.
		hdr, n, err := ParseHeader(tc.want)
		want := ws.Header{Fin: tc.fin, OpCode: tc.op, Length: int64(tc.n)}
		if err != nil || n != len(tc.want) || hdr != want {
			t.Errorf("#%d: got ParseHeader %+v, %d, %v; want %+v", i, hdr, n, err, want)
		}
	}
}

func TestParseHeaderAgainstGobwas(t *testing.T) {
	for i, in := range [][]byte{
		mf(ws.OpText, true, "abc"),
		build(spec{fin: false, rsv: 5, op: 0xb, payload: make([]byte, 300)}),
		build(spec{fin: true, op: ws.OpBinary, unmasked: true, payload: make([]byte, 70000)}),
		build(spec{fin: true, op: ws.OpBinary, len7: 127, ext64: 1<<62 + 3}),
	} {
		want, err := ws.ReadHeader(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := ParseHeader(in)
		if err != nil || got != want {
			t.Errorf("#%d: got %+v, %v; want %+v", i, got, err, want)
		}
		for cut := range n {
			if _, m, err := ParseHeader(in[:cut:cut]); err != ErrNeedMore || m != 0 {
				t.Errorf("#%d: got %d, %v with %d bytes; want 0, ErrNeedMore", i, m, err, cut)
			}
		}
	}
	if _, _, err := ParseHeader(build(spec{fin: true, op: ws.OpBinary, len7: 127, ext64: 1 << 63})); err != ErrLengthOverflow {
		t.Errorf("got %v; want ErrLengthOverflow", err)
	}
}

func TestAppendFrame(t *testing.T) {
	for i, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 200000} {
		payload := bytes.Repeat([]byte{'p'}, n)
		out := AppendFrame(nil, ws.OpBinary, true, payload)
		if len(out) != HeaderLen(n)+n || !bytes.Equal(out[HeaderLen(n):], payload) {
			t.Errorf("#%d: got a frame of %d bytes; want %d", i, len(out), HeaderLen(n)+n)
		}
		f, err := ws.ReadFrame(bytes.NewReader(out))
		if err != nil || f.Header.Masked || !bytes.Equal(f.Payload, payload) {
			t.Errorf("#%d: got %+v, %v reading it back with gobwas/ws", i, f.Header, err)
		}
	}
}

func TestAppendClose(t *testing.T) {
	long := strings.Repeat("r", 200)
	for i, tc := range []struct {
		code   ws.StatusCode
		reason string
		want   string // payload
	}{
		{1000, "", "\x03\xe8"},
		{1001, "bye", "\x03\xe9bye"},
		{1005, "ignored", ""},
		{0, "ignored", ""},
		{4000, long, "\x0f\xa0" + long[:123]},
		{1000, strings.Repeat("a", 123), "\x03\xe8" + strings.Repeat("a", 123)},
		{1000, strings.Repeat("a", 122) + "€", "\x03\xe8" + strings.Repeat("a", 122)},
		{1000, strings.Repeat("a", 121) + "€", "\x03\xe8" + strings.Repeat("a", 121)},
		{1000, strings.Repeat("a", 120) + "€", "\x03\xe8" + strings.Repeat("a", 120) + "€"},
		{1000, strings.Repeat("a", 120) + "😀", "\x03\xe8" + strings.Repeat("a", 120)},
		{1000, strings.Repeat("a", 119) + "😀", "\x03\xe8" + strings.Repeat("a", 119) + "😀"},
		{1000, strings.Repeat("é", 70), "\x03\xe8" + strings.Repeat("é", 61)},
	} {
		out := AppendClose(nil, tc.code, tc.reason)
		want := AppendFrame(nil, ws.OpClose, true, []byte(tc.want))
		if !bytes.Equal(out, want) {
			t.Errorf("#%d: got % x; want % x", i, out, want)
		}
		if len(out) > 2+125 || !utf8.Valid(out[min(len(out), 4):]) {
			t.Errorf("#%d: got a close frame of %d bytes or with invalid UTF-8", i, len(out))
		}
	}
}

func TestTruncateReason(t *testing.T) {
	// Every valid string of 1- to 4-byte runes around the limit stays valid
	// and keeps as much as fits.
	for _, r := range []string{"a", "é", "€", "😀"} {
		for pad := 110; pad <= 126; pad++ {
			s := strings.Repeat("x", pad) + strings.Repeat(r, 4)
			got := truncateReason(s)
			if len(got) > maxCloseReason || !utf8.ValidString(got) || !strings.HasPrefix(s, got) {
				t.Fatalf("%d + %q: got %d bytes, valid %v", pad, r, len(got), utf8.ValidString(got))
			}
			if len(s) > maxCloseReason && len(got) <= maxCloseReason-len(r) {
				t.Fatalf("%d + %q: got %d bytes; want more than %d", pad, r, len(got), maxCloseReason-len(r))
			}
		}
	}
}

func TestHeaderLenNegative(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("got no panic for a negative length; want one")
		}
	}()
	HeaderLen(-1)
}
