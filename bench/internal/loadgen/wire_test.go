package loadgen

import (
	"bytes"
	"testing"
)

func TestStatusAndHeader(t *testing.T) {
	cases := []struct {
		head   string
		status int
		name   string
		value  string
		found  bool
	}{
		{"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n", 429, "retry-after", "3", true},
		{"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nretry-after:  7 \r\n\r\n", 503, "Retry-After", "7", true},
		{"HTTP/1.0 408 Request Timeout\r\n\r\n", 408, "Retry-After", "", false},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 101, "upgrade", "websocket", true},
		{"HTTP/1.1 4x9 Nope\r\n\r\n", 0, "x", "", false},
		{"SSH-2.0\r\n\r\n", 0, "x", "", false},
	}
	for i, c := range cases {
		if got := Status([]byte(c.head)); got != c.status {
			t.Errorf("#%d: Status got %d; want %d", i, got, c.status)
		}
		v, ok := Header([]byte(c.head), c.name)
		if ok != c.found || string(v) != c.value {
			t.Errorf("#%d: Header(%q) got %q, %v; want %q, %v", i, c.name, v, ok, c.value, c.found)
		}
	}
}

func TestParseFrameRoundTrip(t *testing.T) {
	for i, n := range []int{0, 1, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'x'}, n)
		// A server frame is an unmasked client frame: build one by hand.
		masked := AppendMasked(nil, OpBinary, payload, [4]byte{})
		hl := len(masked) - n - 4
		frame := append([]byte{masked[0], masked[1] &^ 0x80}, masked[2:hl]...)
		frame = append(frame, payload...)
		op, got, used, err := ParseFrame(frame)
		if err != nil || op != OpBinary || used != len(frame) || !bytes.Equal(got, payload) {
			t.Errorf("#%d: ParseFrame got op %d, %d bytes, used %d, err %v; want op %d, %d bytes, used %d",
				i, op, len(got), used, err, OpBinary, n, len(frame))
		}
		if _, _, used, _ := ParseFrame(frame[:len(frame)-1]); n > 0 && used != 0 {
			t.Errorf("#%d: partial frame: got used %d; want 0", i, used)
		}
	}
}

func TestParseFrameReservedBits(t *testing.T) {
	cases := []struct {
		b0     byte
		op     byte
		failed bool
	}{
		{0x80 | OpText, OpText, false},
		{0x80 | RSV1 | OpText, RSV1 | OpText, false},
		{0x80 | RSV1 | OpBinary, RSV1 | OpBinary, false},
		{0x80 | 0x20 | OpText, 0, true},
		{0x80 | 0x10 | OpBinary, 0, true},
		{0x80 | RSV1 | OpPing, 0, true},
	}
	for i, c := range cases {
		op, _, n, err := ParseFrame([]byte{c.b0, 1, 'x'})
		if (err != nil) != c.failed || !c.failed && (op != c.op || n != 3) {
			t.Errorf("#%d: got op %#x, n %d, err %v; want op %#x, failed %v", i, op, n, err, c.op, c.failed)
		}
	}
}

func TestFrameLen(t *testing.T) {
	for i, n := range []int{0, 125, 126, 65535, 65536} {
		p := make([]byte, n)
		if got, want := FrameLen(n, true), len(AppendMasked(nil, OpBinary, p, [4]byte{})); got != want {
			t.Errorf("#%d: FrameLen(%d, true) got %d; want %d", i, n, got, want)
		}
	}
}

func TestKeyRingExtraHeader(t *testing.T) {
	k := NewKeyRing(1, "h", "/p", "Sec-WebSocket-Extensions: permessage-deflate")
	req := k.Reqs[0]
	if v, ok := Header(req, "sec-websocket-extensions"); !ok || string(v) != "permessage-deflate" {
		t.Errorf("got %q, %v; want permessage-deflate", v, ok)
	}
	if !bytes.HasSuffix(req, []byte("permessage-deflate\r\n\r\n")) {
		t.Errorf("request does not end with the extra header and a blank line: %q", req)
	}
}
