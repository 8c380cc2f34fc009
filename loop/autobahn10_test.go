//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"testing"

	"github.com/gobwas/ws"
)

// TestAutobahn10AutoFragmentation ports group 10: a 65536-byte message in
// 1300-byte fragments is reassembled.
func TestAutobahn10AutoFragmentation(t *testing.T) { autobahn10AutoFragmentation(t, overTCP) }

func autobahn10AutoFragmentation(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	runCases(t, s, []abCase{{"10.1.1", func(w *wsClient) {
		p := pattern(65536, true)
		w.Write(fragments(ws.OpText, p, 1300))
		w.ExpectMessage(ws.OpText, p)
		w.CloseNormally()
	}}})
}
