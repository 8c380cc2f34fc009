// Package wstest is a WebSocket client on a bare TCP socket for tests. It
// writes exactly the bytes a test chooses (a handshake, masked client
// frames that may break every rule, input cut anywhere) and reads the
// server's answer byte for byte, checking what RFC 6455 requires of a
// server. It imports nothing from the module but
// github.com/upgate/upgate/internal/testutil, so the tests of every package
// may use it, those inside package loop included.
package wstest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gobwas/ws"
)

// Key is the Sec-WebSocket-Key of the handshakes UpgradeRequest writes, the
// sample nonce of RFC 6455 section 1.3; Accept is the Sec-WebSocket-Accept
// a server must answer it with.
const (
	Key    = "dGhlIHNhbXBsZSBub25jZQ=="
	Accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// UpgradeRequest returns a minimal valid WebSocket handshake for path, with
// Host "test", Key as its key and the extra header lines (given without
// their CRLF) before the blank line.
func UpgradeRequest(path string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path)
	b.WriteString("Sec-WebSocket-Key: " + Key + "\r\nSec-WebSocket-Version: 13\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// ClientFrame encodes one masked client frame with a fixed masking key.
// Nothing is checked: op, rsv (in ws.Header.Rsv form, RSV1 = 4) and the
// payload length may break the protocol, for tests of a server's answer to
// bad frames. The length takes the shortest encoding.
func ClientFrame(op ws.OpCode, fin bool, rsv byte, payload []byte) []byte {
	return ClientFrameMask(op, fin, rsv, payload, [4]byte{0x37, 0xfa, 0x21, 0x3d})
}

// ClientFrameMask is ClientFrame with the masking key mask.
func ClientFrameMask(op ws.OpCode, fin bool, rsv byte, payload []byte, mask [4]byte) []byte {
	h := ws.Header{Fin: fin, Rsv: rsv, OpCode: op, Masked: true, Mask: mask, Length: int64(len(payload))}
	b := bytes.NewBuffer(make([]byte, 0, ws.HeaderSize(h)+len(payload)))
	if err := ws.WriteHeader(b, h); err != nil {
		panic(err) // a bytes.Buffer takes every write
	}
	n := b.Len()
	b.Write(payload)
	out := b.Bytes()
	ws.Cipher(out[n:], mask, 0)
	return out
}

// Message encodes payload as one whole masked message of op: a single
// frame with FIN set.
func Message(op ws.OpCode, payload []byte) []byte { return ClientFrame(op, true, 0, payload) }

// ClosePayload is the payload of a close frame: code, then reason.
func ClosePayload(code ws.StatusCode, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// Pattern returns n deterministic bytes: lower-case ASCII letters when text
// is true, else bytes of every value.
func Pattern(n int, text bool) []byte {
	b := make([]byte, n)
	for i := range b {
		if text {
			b[i] = 'a' + byte(i%26)
		} else {
			b[i] = byte(i*31 + 7)
		}
	}
	return b
}

// Frame is a frame read from the server.
type Frame struct {
	Fin     bool
	Rsv     byte // in ws.Header.Rsv form: RSV1 = 4
	Op      ws.OpCode
	Payload []byte
}

// String shows the header and the first 32 bytes of the payload.
func (f Frame) String() string {
	return fmt.Sprintf("{fin:%v rsv:%d op:%d len:%d %q}", f.Fin, f.Rsv, f.Op, len(f.Payload), trunc(f.Payload))
}

// CloseCode returns the status code of a close frame's payload, or
// ws.StatusNoStatusRcvd (1005) when the payload has none.
func (f Frame) CloseCode() ws.StatusCode {
	if len(f.Payload) < 2 {
		return ws.StatusNoStatusRcvd
	}
	return ws.StatusCode(binary.BigEndian.Uint16(f.Payload))
}

// errMasked is the answer to a masked frame from the server, which RFC 6455
// section 5.1 forbids.
var errMasked = errors.New("wstest: server frame is masked")

// ReadFrame reads one whole frame from br, with a payload of its own. A
// masked frame is an error.
func ReadFrame(br *bufio.Reader) (Frame, error) {
	var h [10]byte
	fin, rsv, op, n, err := readHeader(br, &h)
	f := Frame{Fin: fin, Rsv: rsv, Op: op}
	if err != nil {
		return f, err
	}
	f.Payload = make([]byte, n)
	_, err = io.ReadFull(br, f.Payload)
	return f, err
}

// readHeader reads a frame header into h (which it takes by pointer, so
// that a caller's buffer serves and nothing is allocated) and returns its
// fields and the payload length.
func readHeader(br *bufio.Reader, h *[10]byte) (fin bool, rsv byte, op ws.OpCode, n uint64, err error) {
	if _, err = io.ReadFull(br, h[:2]); err != nil {
		return
	}
	fin, rsv, op = h[0]&0x80 != 0, h[0]>>4&7, ws.OpCode(h[0]&0xf)
	if h[1]&0x80 != 0 {
		err = errMasked
		return
	}
	n = uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err = io.ReadFull(br, h[2:4]); err == nil {
			n = uint64(binary.BigEndian.Uint16(h[2:4]))
		}
	case 127:
		if _, err = io.ReadFull(br, h[2:10]); err == nil {
			n = binary.BigEndian.Uint64(h[2:10])
		}
	}
	return
}

// trunc is at most the first 32 bytes of b, for messages.
func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
