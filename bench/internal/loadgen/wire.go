package loadgen

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// websocketGUID is the constant of RFC 6455 §1.3 behind Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// KeyRing holds ready-made upgrade requests, each with its own random
// Sec-WebSocket-Key, and the Sec-WebSocket-Accept each one must get back.
// The client cycles through them: building and hashing a fresh key per
// handshake would spend the load generator's core on SHA-1 instead of on
// driving the server, and a server cannot tell the difference.
type KeyRing struct {
	Reqs    [][]byte
	Accepts [][]byte
	Dst     *unix.SockaddrInet4 // where its connections go; nil: the client's default
	next    int
}

// NewKeyRing prepares n upgrade requests for path on host; extra holds
// further header fields, each a whole line without its CRLF (such as
// "Sec-WebSocket-Extensions: permessage-deflate").
func NewKeyRing(n int, host, path string, extra ...string) *KeyRing {
	var more string
	for _, h := range extra {
		more += h + "\r\n"
	}
	k := &KeyRing{Reqs: make([][]byte, n), Accepts: make([][]byte, n)}
	var raw [16]byte
	for i := range n {
		_, _ = rand.Read(raw[:])
		key := base64.StdEncoding.EncodeToString(raw[:])
		k.Reqs[i] = []byte("GET " + path + " HTTP/1.1\r\n" +
			"Host: " + host + "\r\n" +
			"Upgrade: websocket\r\n" +
			"Connection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + key + "\r\n" +
			"Sec-WebSocket-Version: 13\r\n" + more + "\r\n")
		k.Accepts[i] = []byte(AcceptKey(key))
	}
	return k
}

// Take returns the index of the next request.
func (k *KeyRing) Take() int {
	i := k.next
	k.next++
	if k.next == len(k.Reqs) {
		k.next = 0
	}
	return i
}

// AcceptKey is the Sec-WebSocket-Accept value for key.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// crlf2 ends a request or response head.
var crlf2 = []byte("\r\n\r\n")

// HeadEnd returns the index in b of the blank line that ends a request or
// response head (its CRLF CRLF, so the head is b[:HeadEnd(b)+4]), or -1
// when b holds no whole head.
func HeadEnd(b []byte) int { return bytes.Index(b, crlf2) }

var (
	status101  = []byte("HTTP/1.1 101 ")
	acceptName = []byte("sec-websocket-accept")
)

// CheckResponse verifies a complete response head: the status line must be
// 101 and, when accept is not nil, Sec-WebSocket-Accept must equal it. It
// returns a short reason when the response is not acceptable.
func CheckResponse(head, accept []byte) string {
	if !bytes.HasPrefix(head, status101) {
		if len(head) >= 12 && bytes.HasPrefix(head, []byte("HTTP/1.")) {
			return "status " + string(head[9:12])
		}
		return "bad status line"
	}
	if accept == nil {
		return ""
	}
	rest := head
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return "no Sec-WebSocket-Accept"
		}
		rest = rest[i+2:]
		colon := bytes.IndexByte(rest, ':')
		eol := bytes.Index(rest, []byte("\r\n"))
		if colon < 0 || eol < 0 || colon > eol {
			continue
		}
		if !bytes.EqualFold(bytes.TrimSpace(rest[:colon]), acceptName) {
			continue
		}
		if bytes.Equal(bytes.TrimSpace(rest[colon+1:eol]), accept) {
			return ""
		}
		return "bad Sec-WebSocket-Accept"
	}
}

// Status returns the status code of a response head, or 0 when its status
// line is not HTTP/1.x's.
func Status(head []byte) int {
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.")) || head[8] != ' ' {
		return 0
	}
	n := 0
	for _, b := range head[9:12] {
		if b < '0' || b > '9' {
			return 0
		}
		n = n*10 + int(b-'0')
	}
	return n
}

// Header returns the value of the first header field called name (case
// insensitive) in a response or request head, trimmed, and whether there
// is one.
func Header(head []byte, name string) ([]byte, bool) {
	rest := head
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return nil, false
		}
		rest = rest[i+2:]
		eol := bytes.Index(rest, []byte("\r\n"))
		if eol <= 0 {
			return nil, false
		}
		colon := bytes.IndexByte(rest[:eol], ':')
		if colon < 0 {
			continue
		}
		if bytes.EqualFold(bytes.TrimSpace(rest[:colon]), []byte(name)) {
			return bytes.TrimSpace(rest[colon+1 : eol]), true
		}
	}
}

// WebSocket opcodes the client uses.
const (
	OpText   = 0x1
	OpBinary = 0x2
	OpClose  = 0x8
	OpPing   = 0x9
	OpPong   = 0xA
)

// RSV1 is the first reserved bit of a frame's first byte: set on the first
// frame of a message compressed with permessage-deflate (RFC 7692 §6). Pass
// op|RSV1 to AppendMasked to send a compressed message; ParseFrame keeps it
// in the opcode it returns.
const RSV1 = 0x40

// FrameLen is the length on the wire of a frame with an n-byte payload:
// header, masking key when masked, payload.
func FrameLen(n int, masked bool) int {
	hl := 2
	switch {
	case n >= 1<<16:
		hl = 10
	case n >= 126:
		hl = 4
	}
	if masked {
		hl += 4
	}
	return hl + n
}

// AppendMasked appends one final client frame (masked, RFC 6455 §5.3); op
// may carry RSV1.
func AppendMasked(dst []byte, op byte, payload []byte, mask [4]byte) []byte {
	dst = append(dst, 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n < 1<<16:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range payload {
		dst[start+i] ^= mask[i&3]
	}
	return dst
}

// ParseFrame decodes the server frame at the start of b: its opcode, its
// payload and its total length, or n == 0 when b holds only part of it.
// The opcode keeps RSV1 (op&RSV1), set on compressed data frames; RSV2,
// RSV3 and RSV1 on a control frame are errors.
func ParseFrame(b []byte) (op byte, payload []byte, n int, err error) {
	if len(b) < 2 {
		return 0, nil, 0, nil
	}
	if b[0]&0x80 == 0 {
		return 0, nil, 0, fmt.Errorf("fragmented server frame")
	}
	if b[1]&0x80 != 0 {
		return 0, nil, 0, fmt.Errorf("masked server frame")
	}
	op = b[0] & (RSV1 | 0x0f)
	if b[0]&0x30 != 0 || op&RSV1 != 0 && op&0x08 != 0 {
		return 0, nil, 0, fmt.Errorf("reserved bits set")
	}
	hl, ln := 2, int(b[1]&0x7f)
	switch ln {
	case 126:
		if len(b) < 4 {
			return 0, nil, 0, nil
		}
		hl, ln = 4, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, nil, 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v > 1<<30 {
			return 0, nil, 0, fmt.Errorf("server frame too long")
		}
		hl, ln = 10, int(v)
	}
	if len(b) < hl+ln {
		return 0, nil, 0, nil
	}
	return op, b[hl : hl+ln], hl + ln, nil
}
