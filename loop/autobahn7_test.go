//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// TestAutobahn7Close ports group 7: the close handshake after a message, a
// second close, data and pings after close (ignored: nothing is sent after
// the server's close frame), close payloads of every size and validity, and
// every valid and invalid close code.
func TestAutobahn7Close(t *testing.T) { autobahn7Close(t, overTCP) }

func autobahn7Close(t *testing.T, wr wire) {
	s := wr.startEcho(t)
	closeWith := func(payload []byte, want ws.StatusCode) func(w *wsClient) {
		return func(w *wsClient) {
			w.Write(msg(ws.OpClose, payload))
			w.ExpectClose(want)
		}
	}
	invalidReason, _ := hex.DecodeString(kosme + "eda080656469746564")
	cases := []abCase{
		{"7.1.1", func(w *wsClient) {
			w.Write(text("Hello World!"))
			w.ExpectMessage(ws.OpText, []byte("Hello World!"))
			w.CloseNormally()
		}},
		{"7.1.2", func(w *wsClient) {
			c := msg(ws.OpClose, closePayload(1000, ""))
			w.Write(c, c)
			w.ExpectClose(1000) // one close reply, then EOF
		}},
		{"7.1.3", func(w *wsClient) {
			w.Write(msg(ws.OpClose, closePayload(1000, "")), ping("Hello World!"))
			w.ExpectClose(1000)
		}},
		{"7.1.4", func(w *wsClient) {
			w.Write(msg(ws.OpClose, closePayload(1000, "")), text("Hello World!"))
			w.ExpectClose(1000)
		}},
		{"7.1.5", func(w *wsClient) {
			w.Write(firstFrag(ws.OpText, "fragment1"), msg(ws.OpClose, closePayload(1000, "")), cont(true, "fragment2"))
			w.ExpectClose(1000)
		}},
		{"7.1.6", func(w *wsClient) {
			big := []byte(strings.Repeat("BAsd7&jh23", 256<<10/10))
			w.Write(msg(ws.OpText, big), msg(ws.OpClose, closePayload(1000, "")), ping("Hello World!"))
			w.ExpectMessage(ws.OpText, big)
			w.ExpectClose(1000)
		}},
		{"7.3.1", closeWith(nil, 1000)},
		{"7.3.2", closeWith([]byte{0x03}, ws.StatusProtocolError)},
		{"7.3.3", closeWith(closePayload(1000, ""), 1000)},
		{"7.3.4", closeWith(closePayload(1000, "Hello World!"), 1000)},
		{"7.3.5", closeWith(closePayload(1000, strings.Repeat("*", 123)), 1000)},
		{"7.3.6", closeWith(closePayload(1000, strings.Repeat("*", 124)), ws.StatusProtocolError)},
		{"7.5.1", closeWith(closePayload(1000, string(invalidReason)), ws.StatusInvalidFramePayloadData)},
	}
	for i, code := range []ws.StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cases = append(cases, abCase{fmt.Sprintf("7.7.%d", i+1), closeWith(closePayload(code, ""), code)})
	}
	for i, code := range []ws.StatusCode{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999} {
		cases = append(cases, abCase{fmt.Sprintf("7.9.%d", i+1), closeWith(closePayload(code, ""), ws.StatusProtocolError)})
	}
	for i, code := range []ws.StatusCode{5000, 65535} {
		cases = append(cases, abCase{fmt.Sprintf("7.13.%d", i+1), closeWith(closePayload(code, ""), ws.StatusProtocolError)})
	}
	runCases(t, s, cases)
}

// TestCloseReportedToHandler checks the code and error OnClose reports for
// a peer-initiated close, a protocol error and a dropped connection.
func TestCloseReportedToHandler(t *testing.T) { closeReportedToHandler(t, overTCP) }

func closeReportedToHandler(t *testing.T, wr wire) {
	h := newTestHandler()
	s := wr.start(t, h, testOptions())
	w := s.dialWS(t)
	w.Write(msg(ws.OpClose, closePayload(4001, "app")))
	w.ExpectClose(4001)
	if ci := h.waitClose(t); ci.code != 4001 || ci.err != nil {
		t.Fatalf("peer close: %+v", ci)
	}
	w = s.dialWS(t)
	w.Write(clientFrame(ws.OpText, true, 4, nil))
	w.ExpectClose(ws.StatusProtocolError)
	if ci := h.waitClose(t); ci.code != ws.StatusProtocolError || ci.err == nil {
		t.Fatalf("protocol error: %+v", ci)
	}
	w = s.dialWS(t)
	_ = w.Conn.Close()
	if ci := h.waitClose(t); ci.code != ws.StatusAbnormalClosure || ci.err != ErrAbnormalClosure {
		t.Fatalf("dropped: %+v", ci)
	}
	snap := s.Stats()
	if snap.Closes[0] != 1 || snap.Closes[1002] != 1 || snap.Closes[1006] != 1 || snap.ProtocolErrors != 1 {
		t.Fatalf("closes %v, protocol errors %d", snap.Closes, snap.ProtocolErrors)
	}
}
