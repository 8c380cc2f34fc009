//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// TestAutobahn4Opcodes ports group 4: reserved non-control opcodes 3-7
// (4.1) and control opcodes 11-15 (4.2) fail the connection with 1002,
// with or without payload, also after a valid message (echoed first); the
// ping that follows the bad frame is not answered.
func TestAutobahn4Opcodes(t *testing.T) { autobahn4Opcodes(t, overTCP) }

func autobahn4Opcodes(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	var cases []abCase
	for g, base := range []ws.OpCode{3, 11} {
		for i := range 5 {
			op := base + ws.OpCode(i)
			var payload []byte
			if i%2 == 1 || i == 4 {
				payload = []byte("reserved opcode payload")
			}
			id := fmt.Sprintf("4.%d.%d", g+1, i+1)
			if i < 2 {
				cases = append(cases, abCase{id, func(w *wsClient) {
					w.Write(clientFrame(op, true, 0, payload))
					w.ExpectClose(ws.StatusProtocolError)
				}})
				continue
			}
			cases = append(cases, abCase{id, func(w *wsClient) {
				w.Write(text("Hello, world!"), clientFrame(op, true, 0, payload), ping(""))
				w.ExpectMessage(ws.OpText, []byte("Hello, world!"))
				w.ExpectClose(ws.StatusProtocolError)
			}})
		}
	}
	runCases(t, s, cases)
}
