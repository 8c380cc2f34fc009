//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestAutobahn5Fragmentation ports group 5: fragmented control frames fail
// (5.1-5.2); a text message in two fragments is reassembled whatever the
// delivery (5.3-5.5), also with a ping between the fragments, answered
// before the message completes (5.6-5.8); continuations with nothing to
// continue (5.9-5.17) and a new data frame inside a fragmented message
// (5.18) fail with 1002; many fragments with pings in between (5.19-5.20).
func TestAutobahn5Fragmentation(t *testing.T) { autobahn5Fragmentation(t, overTCP) }

func autobahn5Fragmentation(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	two := []byte("fragment1fragment2")
	fail := func(d delivery, frames ...[]byte) func(w *wsClient) {
		return func(w *wsClient) {
			w.send(d, frames...)
			w.ExpectClose(ws.StatusProtocolError)
		}
	}
	cases := []abCase{
		{"5.1", fail(oneWrite, clientFrame(ws.OpPing, false, 0, []byte("fragment1")), cont(true, "fragment2"))},
		{"5.2", fail(oneWrite, clientFrame(ws.OpPong, false, 0, []byte("fragment1")), cont(true, "fragment2"))},
	}
	for i, d := range []delivery{oneWrite, frameWise, oneByte} {
		cases = append(cases, abCase{"5." + itoa(3+i), func(w *wsClient) {
			w.send(d, firstFrag(ws.OpText, "fragment1"), cont(true, "fragment2"))
			w.ExpectMessage(ws.OpText, two)
			w.CloseNormally()
		}})
	}
	for i, d := range []delivery{oneWrite, frameWise, oneByte} {
		cases = append(cases, abCase{"5." + itoa(6+i), func(w *wsClient) {
			w.send(d, firstFrag(ws.OpText, "fragment1"), ping("pongme!"), cont(true, "fragment2"))
			w.ExpectPong([]byte("pongme!"))
			w.ExpectMessage(ws.OpText, two)
			w.CloseNormally()
		}})
	}
	for i, d := range []delivery{oneWrite, frameWise, oneByte} {
		cases = append(cases,
			abCase{"5." + itoa(9+i), fail(d, cont(true, "non-continuation payload"), text("Hello, world!"))},
			abCase{"5." + itoa(12+i), fail(d, cont(false, "non-continuation payload"), text("Hello, world!"))})
	}
	cases = append(cases,
		abCase{"5.15", func(w *wsClient) {
			w.Write(firstFrag(ws.OpText, "fragment1"), cont(true, "fragment2"), cont(false, "fragment3"), cont(true, "fragment4"))
			w.ExpectMessage(ws.OpText, two)
			w.ExpectClose(ws.StatusProtocolError)
		}},
		abCase{"5.16", fail(oneWrite, cont(false, "fragment1"), firstFrag(ws.OpText, "fragment2"), cont(true, "fragment3"),
			cont(false, "fragment1"), firstFrag(ws.OpText, "fragment2"), cont(true, "fragment3"))},
		abCase{"5.17", fail(oneWrite, cont(true, "fragment1"), firstFrag(ws.OpText, "fragment2"), cont(true, "fragment3"),
			cont(true, "fragment1"), firstFrag(ws.OpText, "fragment2"), cont(true, "fragment3"))},
		abCase{"5.18", fail(oneWrite, firstFrag(ws.OpText, "fragment1"), text("fragment2"))},
	)
	many := func(d delivery) func(w *wsClient) {
		return func(w *wsClient) {
			w.send(d, firstFrag(ws.OpText, "fragment1"), cont(false, "fragment2"), ping("pongme 1!"))
			w.ExpectPong([]byte("pongme 1!")) // answered while the message is open
			// The suite's pause: time passes with the message open, which
			// must not end it (no idle timeout here).
			time.Sleep(50 * time.Millisecond)
			w.send(d, cont(false, "fragment3"), cont(false, "fragment4"), ping("pongme 2!"))
			w.ExpectPong([]byte("pongme 2!"))
			time.Sleep(50 * time.Millisecond) // the suite's second pause
			w.send(d, cont(true, "fragment5"))
			w.ExpectMessage(ws.OpText, []byte("fragment1fragment2fragment3fragment4fragment5"))
			w.CloseNormally()
		}
	}
	cases = append(cases, abCase{"5.19", many(oneWrite)}, abCase{"5.20", many(frameWise)})
	runCases(t, s, cases)
}
