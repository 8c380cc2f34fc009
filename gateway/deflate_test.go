package gateway

import (
	"bytes"
	"compress/flate"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/internal/wstest"
	"github.com/upgate/upgate/loop/deflate"
)

// pmdAnswer is the Sec-WebSocket-Extensions value of an accepted offer
// that set no window.
const pmdAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// deflateRoutes are the routes of the deflate tests: the defaults on /echo,
// compression off on /plain, a threshold of 1000 bytes at level 9 on /big.
func deflateRoutes() []Route {
	return []Route{
		{Path: "/echo", Behaviour: Echo},
		{Path: "/plain", Behaviour: Echo, NoDeflate: true},
		{Path: "/big", Behaviour: Echo, DeflateLevel: 9, DeflateThreshold: 1000},
	}
}

// extensionsOf returns the Sec-WebSocket-Extensions value of a response
// head, "" when it has none.
func extensionsOf(head string) string {
	for _, line := range strings.Split(head, "\r\n") {
		if v, ok := strings.CutPrefix(line, "Sec-WebSocket-Extensions: "); ok {
			return v
		}
	}
	return ""
}

// TestDeflateNegotiation: a route with permessage-deflate on accepts the
// first acceptable offer, always without context takeover, and answers a
// malformed Sec-WebSocket-Extensions 400; a route with it off declines
// every offer.
func TestDeflateNegotiation(t *testing.T) {
	g := startGateway(t, testConfig(deflateRoutes()...))
	cases := []struct {
		path   string
		offer  string // the header line, "" for none
		status int
		want   string // the answer's Sec-WebSocket-Extensions
	}{
		{"/echo", "", 101, ""},
		{"/echo", "permessage-deflate", 101, pmdAnswer},
		{"/echo", "permessage-deflate; client_max_window_bits", 101, pmdAnswer},
		{"/echo", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 101, pmdAnswer},
		{"/echo", "permessage-deflate; server_max_window_bits=10", 101, pmdAnswer + "; server_max_window_bits=10"},
		{"/echo", "permessage-deflate; client_max_window_bits=12", 101, pmdAnswer},
		{"/echo", "x-webkit-deflate-frame", 101, ""},
		{"/echo", "permessage-deflate; mystery", 101, ""},
		{"/echo", "permessage-deflate; server_max_window_bits=16", 101, ""},
		{"/echo", "permessage-deflate; mystery, permessage-deflate", 101, pmdAnswer},
		{"/echo", "permessage-deflate x", 400, ""},
		{"/echo", "; permessage-deflate", 400, ""},
		{"/big", "permessage-deflate", 101, pmdAnswer},
		{"/plain", "permessage-deflate", 101, ""},
		// With compression off the header is not read at all.
		{"/plain", "permessage-deflate x", 101, ""},
	}
	for i, tc := range cases {
		w := wstest.Dial(t, g.Addr().String())
		var extra []string
		if tc.offer != "" {
			extra = append(extra, "Sec-WebSocket-Extensions: "+tc.offer)
		}
		w.Write(wstest.UpgradeRequest(tc.path, extra...))
		status, head := w.ReadHead()
		if status != tc.status {
			t.Errorf("#%d: %s %q: got status %d; want %d", i, tc.path, tc.offer, status, tc.status)
			continue
		}
		if got := extensionsOf(head); got != tc.want {
			t.Errorf("#%d: %s %q: got extensions %q; want %q", i, tc.path, tc.offer, got, tc.want)
		}
		if status == 400 && !strings.Contains(head, "Connection: close") {
			t.Errorf("#%d: 400 does not close:\n%s", i, head)
		}
		_ = w.Conn.Close()
	}
	if v := metric(t, g, `upgate_rejections_total{reason="extensions"}`); v != 2 {
		t.Errorf("got upgate_rejections_total{reason=\"extensions\"} %v; want 2", v)
	}
	// Each deflate connection ended: open connections drop to zero, then
	// the counter holds what OnOpen counted.
	eventually(t, "connections closed", func() bool { return g.Connections() == 0 })
	if v := metric(t, g, `upgate_deflate_connections_total{route="/echo"}`); v != 6 {
		t.Errorf("got upgate_deflate_connections_total{route=\"/echo\"} %v; want 6", v)
	}
	if v := metric(t, g, `upgate_deflate_connections_total{route="/plain"}`); v != 0 {
		t.Errorf("got upgate_deflate_connections_total{route=\"/plain\"} %v; want 0", v)
	}
}

// inflate undoes deflate.Compressor.Compress with the standard library.
func inflate(t testing.TB, payload []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflating %d bytes: %v", len(payload), err)
	}
	return out
}

// TestDeflateEchoFrames: on the wire, messages of the route's threshold or
// more come back compressed (RSV1), smaller ones as they are, whether the
// client sent them compressed or not; text and binary, up to 1 MiB.
func TestDeflateEchoFrames(t *testing.T) {
	routes := deflateRoutes()
	for i := range routes {
		routes[i].MaxMessage = 2 << 20
	}
	g := startGateway(t, testConfig(routes...))
	comp, err := deflate.NewCompressor(deflate.DefaultLevel, 15)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range []struct {
		path      string
		threshold int // 0: never compressed
	}{{"/echo", DefaultDeflateThreshold}, {"/big", 1000}, {"/plain", 0}} {
		w := wstest.Dial(t, g.Addr().String())
		w.Write(wstest.UpgradeRequest(rc.path, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))
		status, head := w.ReadHead()
		if status != 101 {
			t.Fatalf("%s: got status %d; want 101", rc.path, status)
		}
		i := 0
		for _, n := range []int{0, 1, 127, 128, 129, 999, 1000, 4096, 65536, 1 << 20} {
			for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
				for _, compressed := range []bool{false, true} {
					if compressed && rc.threshold == 0 {
						continue // the route did not negotiate
					}
					i++
					msg := wstest.Pattern(n, op == ws.OpText)
					if compressed {
						payload, err := comp.Compress(nil, msg)
						if err != nil {
							t.Fatal(err)
						}
						w.Write(wstest.ClientFrame(op, true, 4, payload))
					} else {
						w.Write(wstest.Message(op, msg))
					}
					f, err := wstest.ReadFrame(w.R)
					if err != nil {
						t.Fatalf("#%d: reading frame: %v", i, err)
					}
					wantRSV := byte(0)
					if rc.threshold > 0 && n >= rc.threshold {
						wantRSV = 4
					}
					if f.Op != op || f.Rsv != wantRSV || !f.Fin {
						t.Fatalf("#%d: %s %d bytes of op %d (sent compressed %v): got %v; want op %d, rsv %d (extensions %q)",
							i, rc.path, n, op, compressed, f, op, wantRSV, extensionsOf(head))
					}
					got := f.Payload
					if f.Rsv != 0 {
						got = inflate(t, got)
						// The binary pattern does not compress; the text
						// one repeats the alphabet.
						if op == ws.OpText && len(f.Payload) >= n {
							t.Errorf("#%d: %s: %d bytes compressed to %d", i, rc.path, n, len(f.Payload))
						}
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("#%d: %s: got %d bytes back; want the %d sent", i, rc.path, len(got), n)
					}
				}
			}
		}
		w.CloseNormally()
	}
}

// TestDeflateGorilla: gorilla with compression negotiates and round-trips
// text and binary of every size; the route with compression off declines.
func TestDeflateGorilla(t *testing.T) {
	routes := deflateRoutes()
	routes[0].MaxMessage = 2 << 20
	g := startGateway(t, testConfig(routes...))
	d := &websocket.Dialer{HandshakeTimeout: testTimeout, EnableCompression: true}
	for _, path := range []string{"/echo", "/plain"} {
		c, resp, err := d.Dial(wsURL(g, path), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got := resp.Header.Get("Sec-WebSocket-Extensions")
		want := pmdAnswer
		if path == "/plain" {
			want = ""
		}
		if got != want {
			t.Errorf("%s: got extensions %q; want %q", path, got, want)
		}
		if path == "/plain" {
			_ = c.Close()
			continue
		}
		for i, n := range []int{0, 10, 200, 70000, 1 << 20} {
			for _, typ := range []int{websocket.TextMessage, websocket.BinaryMessage} {
				msg := wstest.Pattern(n, typ == websocket.TextMessage)
				if err := c.WriteMessage(typ, msg); err != nil {
					t.Fatal(err)
				}
				gt, back, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("#%d: %v", i, err)
				}
				if gt != typ || !bytes.Equal(back, msg) {
					t.Fatalf("#%d: got type %d, %d bytes; want type %d, the %d sent", i, gt, len(back), typ, n)
				}
			}
		}
		_ = c.Close()
	}
}

// TestDeflateAuth: a handshake that waits for the authorisation service
// negotiates too, and a compressed message reaches the bus inflated.
func TestDeflateAuth(t *testing.T) {
	g := fleetNode(t, NATS{Servers: []string{Embedded}, Listen: "127.0.0.1:0", NodeID: "n1"})
	nc := backend(t, g.FleetStatus().NATS)
	authBackend(t, nc)
	in, err := nc.SubscribeSync("upgate.in.secure")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()

	d := &websocket.Dialer{HandshakeTimeout: testTimeout, EnableCompression: true}
	c, resp, err := d.Dial(wsURL(g, "/secure/room?user=alice"), http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != pmdAnswer {
		t.Errorf("got extensions %q; want %q", got, pmdAnswer)
	}
	msg := bytes.Repeat([]byte("compressible "), 100)
	if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	m, err := in.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Data, msg) {
		t.Errorf("got %d bytes on the bus; want the %d sent", len(m.Data), len(msg))
	}

	// A malformed offer is refused before the service is asked.
	w := wstest.Dial(t, g.Addr().String())
	w.Write(wstest.UpgradeRequest("/secure/room?user=alice", "Sec-WebSocket-Extensions: permessage-deflate x"))
	if status, head := w.ReadHead(); status != 400 {
		t.Errorf("malformed offer: got status %d; want 400:\n%s", status, head)
	}
}
