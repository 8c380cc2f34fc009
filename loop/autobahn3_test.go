//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"testing"

	"github.com/gobwas/ws"
)

// TestAutobahn3ReservedBits ports group 3: a frame with RSV bits set and no
// extension negotiated fails the connection with 1002, also after a valid
// message (which is echoed first) and whatever the frame's type; nothing
// sent after the bad frame (a ping) is answered.
func TestAutobahn3ReservedBits(t *testing.T) { autobahn3ReservedBits(t, overTCP) }

func autobahn3ReservedBits(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	hello := []byte("Hello, world!")
	afterValid := func(rsv byte, d delivery) func(w *wsClient) {
		return func(w *wsClient) {
			w.send(d, text("Hello, world!"), clientFrame(ws.OpText, true, rsv, hello), ping(""))
			w.ExpectMessage(ws.OpText, hello)
			w.ExpectClose(ws.StatusProtocolError)
		}
	}
	bad := func(f []byte) func(w *wsClient) {
		return func(w *wsClient) {
			w.Write(f)
			w.ExpectClose(ws.StatusProtocolError)
		}
	}
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	cases := []abCase{
		{"3.1", bad(clientFrame(ws.OpText, true, 1, hello))},
		{"3.2", afterValid(2, oneWrite)},
		{"3.3", afterValid(3, frameWise)},
		{"3.4", afterValid(4, oneByte)},
		{"3.5", bad(clientFrame(ws.OpBinary, true, 4, bin))},
		{"3.6", bad(clientFrame(ws.OpPing, true, 5, hello))},
		{"3.7", bad(clientFrame(ws.OpClose, true, 6, nil))},
	}
	runCases(t, s, cases)
}
