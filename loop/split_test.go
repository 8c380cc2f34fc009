//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
)

// TestRandomReadBoundaries drives OnTraffic with a long stream (handshake,
// messages of random sizes up to 70000 bytes, fragmented ones, pings) cut at
// random points, from 1-byte reads to large ones, and checks the output is
// exactly the 101 followed by every echo and pong in order. It exercises
// the head parser's resumption and the move of incomplete frames into the
// connection's own buffer.
func TestRandomReadBoundaries(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		o := testOptions()
		o.MaxMessage = 1 << 20
		s, err := New(nopHandler{}, o)
		if err != nil {
			t.Fatal(err)
		}
		fc := newFakeConn(&fakeLoop{srv: s})
		fc.keepAll = true
		ev(s).OnOpen(fc)

		var in, want bytes.Buffer
		in.Write(upgradeRequest("/ws"))
		for range 60 {
			size := rng.IntN(300)
			if rng.IntN(8) == 0 {
				size = rng.IntN(70000)
			}
			p := pattern(size, true)
			switch rng.IntN(4) {
			case 0: // ping
				p = p[:min(len(p), 125)]
				in.Write(msg(ws.OpPing, p))
				want.Write(serverFrame(ws.OpPong, p))
			case 1: // fragmented, with a ping inside
				cut := rng.IntN(len(p) + 1)
				in.Write(clientFrame(ws.OpText, false, 0, p[:cut]))
				in.Write(msg(ws.OpPing, []byte("in-between")))
				in.Write(clientFrame(ws.OpContinuation, true, 0, p[cut:]))
				want.Write(serverFrame(ws.OpPong, []byte("in-between")))
				want.Write(serverFrame(ws.OpText, p))
			default:
				in.Write(msg(ws.OpBinary, p))
				want.Write(serverFrame(ws.OpBinary, p))
			}
		}
		stream := in.Bytes()
		for len(stream) > 0 {
			n := 1 + rng.IntN(5000)
			if rng.IntN(4) == 0 {
				n = 1 + rng.IntN(8)
			}
			n = min(n, len(stream))
			// Like gnet, hand over what is unread plus the new bytes.
			fc.in = append(fc.in, stream[:n]...)
			stream = stream[n:]
			ev(s).OnTraffic(fc)
		}
		br := bufio.NewReader(bytes.NewReader(fc.all))
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
		}
		rest, _ := readAllBuf(br)
		if !bytes.Equal(rest, want.Bytes()) {
			t.Fatalf("seed %d: output differs (%d bytes, want %d)", seed, len(rest), want.Len())
		}
	}
}

// serverFrame is the unmasked frame the server sends for a payload.
func serverFrame(op ws.OpCode, p []byte) []byte {
	f := clientFrameMask(op, true, 0, p, [4]byte{})
	// Drop the mask bit and the (zero) key.
	hl := len(f) - len(p) - 4
	out := append([]byte(nil), f[:hl]...)
	out[1] &^= 0x80
	return append(out, p...)
}

func readAllBuf(br *bufio.Reader) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(br)
	return b.Bytes(), err
}
