//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// TestAutobahn1Framing ports group 1: text (1.1) and binary (1.2) messages
// of lengths around the 7-bit, 16-bit and 64-bit length encodings, and a
// 65536-byte message written in chops of 997 bytes (1.x.8).
func TestAutobahn1Framing(t *testing.T) { autobahn1Framing(t, overTCP) }

func autobahn1Framing(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	var cases []abCase
	for g, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
			cases = append(cases, abCase{fmt.Sprintf("1.%d.%d", g+1, i+1), func(w *wsClient) {
				p := pattern(n, op == ws.OpText)
				w.Write(msg(op, p))
				w.ExpectMessage(op, p)
				w.CloseNormally()
			}})
		}
		cases = append(cases, abCase{fmt.Sprintf("1.%d.8", g+1), func(w *wsClient) {
			p := pattern(65536, op == ws.OpText)
			w.WriteChopped(msg(op, p), 997, 0)
			w.ExpectMessage(op, p)
			w.CloseNormally()
		}})
	}
	runCases(t, s, cases)
}
