package gateway

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// ids returns the ids of the open connections.
func ids(g *Gateway) []uint64 {
	var out []uint64
	g.conns.each(func(c Conn) bool {
		out = append(out, c.ID())
		return true
	})
	return out
}

// dialID opens a connection on path and returns it with its id.
func dialID(t *testing.T, g *Gateway, path string) (*websocket.Conn, uint64) {
	t.Helper()
	before := map[uint64]bool{}
	for _, id := range ids(g) {
		before[id] = true
	}
	c := dial(t, g, path, nil)
	var id uint64
	eventually(t, "registration", func() bool {
		for _, x := range ids(g) {
			if !before[x] {
				id = x
				return true
			}
		}
		return false
	})
	return c, id
}

func TestSendDisconnectGo(t *testing.T) {
	g := startGateway(t, testConfig())
	c, id := dialID(t, g, "/echo")
	if err := g.Send(id, OpText, []byte("pushed")); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, c, websocket.TextMessage, []byte("pushed"))
	if err := g.Send(id+1000, OpText, nil); err != ErrUnknownConn {
		t.Fatalf("Send to unknown id: %v", err)
	}
	if err := g.Disconnect(id+1000, 1000, ""); err != ErrUnknownConn {
		t.Fatalf("Disconnect of unknown id: %v", err)
	}
	if err := g.Disconnect(id, 1005, ""); err == nil {
		t.Fatal("Disconnect with 1005 accepted")
	}
	if err := g.Disconnect(id, 4001, "bye"); err != nil {
		t.Fatal(err)
	}
	if err := g.Send(id, OpText, []byte("late")); err != ErrClosed && err != ErrUnknownConn {
		t.Fatalf("Send while closing: %v", err)
	}
	expectClose(t, c, 4001)
	eventually(t, "unregistration", func() bool { return func() bool { _, ok := g.Conn(id); return !ok }() })
}

func TestAdminSendDisconnect(t *testing.T) {
	cfg := testConfig(Route{Path: "/small", Behaviour: Echo, MaxMessage: 100})
	cfg.Limits.MaxMessage = 4096
	g := startGateway(t, cfg)
	c, id := dialID(t, g, "/small")
	base := adminURL(g, fmt.Sprintf("/connections/%d", id))

	m := doJSON(t, "POST", base+"/send", []byte("hello"), 200)
	if m["sent"] != float64(1) || m["id"] != float64(id) {
		t.Fatalf("send answer %v", m)
	}
	expectMessage(t, c, websocket.TextMessage, []byte("hello"))
	doJSON(t, "POST", base+"/send?binary=1", []byte{0xff, 0}, 200)
	expectMessage(t, c, websocket.BinaryMessage, []byte{0xff, 0})

	info := doJSON(t, "GET", base, nil, 200)
	if info["route"] != "/small" || info["client"] != "127.0.0.1" {
		t.Fatalf("connection info %v", info)
	}

	doJSON(t, "POST", base+"/send", []byte{0xff}, 400)                      // text that is not UTF-8
	doJSON(t, "POST", base+"/send?binary=maybe", nil, 400)                  // bad flag
	doJSON(t, "POST", base+"/send", make([]byte, 101), 413)                 // over the route's limit
	doJSON(t, "POST", adminURL(g, "/connections/999999/send"), nil, 404)    // unknown id
	doJSON(t, "POST", adminURL(g, "/connections/abc/send"), nil, 400)       // malformed id
	doJSON(t, "DELETE", adminURL(g, "/connections/999999"), nil, 404)       // unknown id
	doJSON(t, "DELETE", base+"?code=1006", nil, 400)                        // code that may not be sent
	doJSON(t, "DELETE", base+"?reason="+strings.Repeat("x", 124), nil, 400) // reason too long
	if status, _, _ := do(t, "GET", base+"/send", nil); status != 405 {
		t.Fatalf("GET on /send: %d, want 405", status)
	}
	doJSON(t, "POST", adminURL(g, "/publish/t"), make([]byte, 4097), 413)

	m = doJSON(t, "DELETE", base+"?code=4000&reason=kicked", nil, 200)
	if m["closed"] != float64(1) {
		t.Fatalf("disconnect answer %v", m)
	}
	expectClose(t, c, 4000)
	eventually(t, "unregistration", func() bool { return func() bool { _, ok := g.Conn(id); return !ok }() })
	doJSON(t, "POST", base+"/send", []byte("late"), 404)
}

func TestMetrics(t *testing.T) {
	g := startGateway(t, testConfig())
	status, h, _ := do(t, "GET", adminURL(g, "/metrics"), nil)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", status, h.Get("Content-Type"))
	}
	in := metric(t, g, "upgate_messages_received_total")
	out := metric(t, g, "upgate_sent_bytes_total")
	hs := metric(t, g, `upgate_handshakes_total{route="/echo",result="accepted",status="101"}`)
	lat := metric(t, g, "upgate_handshake_duration_seconds_count")
	c := dial(t, g, "/echo", nil)
	eventually(t, "open gauge", func() bool {
		return metric(t, g, `upgate_websocket_connections_open{route="/echo"}`) == 1
	})
	for range 3 {
		if err := c.WriteMessage(websocket.TextMessage, []byte("12345")); err != nil {
			t.Fatal(err)
		}
		expectMessage(t, c, websocket.TextMessage, []byte("12345"))
	}
	if v := metric(t, g, "upgate_messages_received_total"); v != in+3 {
		t.Fatalf("messages received %v, want %v", v, in+3)
	}
	if v := metric(t, g, "upgate_sent_bytes_total"); v != out+15 {
		t.Fatalf("bytes sent %v, want %v", v, out+15)
	}
	if v := metric(t, g, `upgate_handshakes_total{route="/echo",result="accepted",status="101"}`); v != hs+1 {
		t.Fatalf("accepted handshakes %v, want %v", v, hs+1)
	}
	if v := metric(t, g, "upgate_handshake_duration_seconds_count"); v != lat+1 {
		t.Fatalf("handshake latency count %v, want %v", v, lat+1)
	}
	dialStatus(t, g, "/nowhere", nil, 404)
	if v := metric(t, g, `upgate_handshakes_total{route="none",result="rejected",status="404"}`); v != 1 {
		t.Fatalf("unrouted handshakes %v, want 1", v)
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	expectClose(t, c, 1000)
	eventually(t, "close counted", func() bool {
		return metric(t, g, `upgate_closes_total{route="/echo",code="1000"}`) == 1
	})
	if v := metric(t, g, `upgate_websocket_connections_open{route="/echo"}`); v != 0 {
		t.Fatalf("open gauge %v after close", v)
	}
	// Malformed requests, answered by the loop, are counted too.
	sendMalformed(t, g)
	if v := metric(t, g, `upgate_http_errors_total{status="400"}`); v < 1 {
		t.Fatalf("http errors 400: %v", v)
	}
	// A family shows only once it has a sample: those that count only what
	// happened (requests, errors, closes) have one by now.
	if status, _, _ := do(t, "GET", publicURL(g, "/healthz"), nil); status != 200 {
		t.Fatalf("GET /healthz: %d", status)
	}
	_, _, body := do(t, "GET", adminURL(g, "/metrics"), nil)
	for _, name := range []string{
		"upgate_tcp_connections_open", "upgate_tcp_connections_total",
		"upgate_websocket_connections_open", "upgate_handshakes_total",
		"upgate_handshake_duration_seconds", "upgate_http_requests_total",
		"upgate_http_errors_total", "upgate_messages_received_total",
		"upgate_received_bytes_total", "upgate_messages_sent_total",
		"upgate_sent_bytes_total", "upgate_closes_total",
		"upgate_slow_consumers_total", "upgate_rejections_total",
		"upgate_protocol_errors_total", "upgate_timeouts_total",
		"upgate_publishes_total", "upgate_publish_deliveries_total",
		"upgate_topics", "upgate_draining",
	} {
		if !bytes.Contains(body, []byte("# TYPE "+name+" ")) {
			t.Errorf("no metric family %s", name)
		}
	}
}

func TestAdminListConnections(t *testing.T) {
	cfg := testConfig(Route{Path: "/echo", Behaviour: Echo}, Route{Path: "/ws/{topic}", Behaviour: PubSub})
	g := startGateway(t, cfg)
	list := func(query string) map[string]any {
		t.Helper()
		return doJSON(t, "GET", adminURL(g, "/connections"+query), nil, 200)
	}
	idsOf := func(m map[string]any) []uint64 {
		t.Helper()
		var out []uint64
		for _, e := range m["connections"].([]any) {
			out = append(out, uint64(e.(map[string]any)["id"].(float64)))
		}
		return out
	}
	if m := list(""); m["matched"] != float64(0) || len(m["connections"].([]any)) != 0 || m["next"] != nil {
		t.Fatalf("no connections: %v", m)
	}
	var echo, news, sport []uint64
	for range 3 {
		_, id := dialID(t, g, "/echo")
		echo = append(echo, id)
	}
	for range 4 {
		_, id := dialID(t, g, "/ws/news")
		news = append(news, id)
	}
	_, id := dialID(t, g, "/ws/sport")
	sport = append(sport, id)
	all := slices.Sorted(slices.Values(slices.Concat(echo, news, sport)))

	m := list("")
	if m["matched"] != float64(8) || !slices.Equal(idsOf(m), all) || m["next"] != nil {
		t.Fatalf("all: %v, want ids %v", m, all)
	}
	first := m["connections"].([]any)[slices.Index(all, news[0])].(map[string]any)
	if first["route"] != "/ws/{topic}" || first["topic"] != "news" || first["client"] != "127.0.0.1" || first["remote"] == "" {
		t.Fatalf("entry %v", first)
	}
	if m := list("?topic=news"); m["matched"] != float64(4) || !slices.Equal(idsOf(m), news) {
		t.Fatalf("topic news: %v, want %v", m, news)
	}
	if m := list("?route=/echo"); m["matched"] != float64(3) || !slices.Equal(idsOf(m), echo) {
		t.Fatalf("route /echo: %v, want %v", m, echo)
	}
	if m := list("?route=/echo&topic=news"); m["matched"] != float64(0) {
		t.Fatalf("route /echo and topic news: %v", m)
	}
	if m := list("?topic=nobody"); m["matched"] != float64(0) {
		t.Fatalf("topic nobody: %v", m)
	}
	// Pages of three, by ascending id.
	var paged []uint64
	query := "?limit=3"
	for pages := 0; ; pages++ {
		m := list(query)
		if m["matched"] != float64(len(all)-len(paged)) || pages > 3 {
			t.Fatalf("page %d: %v", pages, m)
		}
		paged = append(paged, idsOf(m)...)
		if m["next"] == nil {
			break
		}
		query = fmt.Sprintf("?limit=3&after=%d", uint64(m["next"].(float64)))
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("pages gave %v, want %v", paged, all)
	}
	for _, bad := range []string{"?limit=0", "?limit=10001", "?limit=x", "?after=-1", "?route=/nowhere", "?topic="} {
		doJSON(t, "GET", adminURL(g, "/connections"+bad), nil, 400)
	}
}
