package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestAdminHandlerMounted serves the admin API from a program's own HTTP
// server, under a prefix, with the admin listener off.
func TestAdminHandlerMounted(t *testing.T) {
	cfg := testConfig(Route{Path: "/ws/{topic}", Behaviour: PubSub})
	cfg.Admin = "off"
	g := startGateway(t, cfg)
	if g.AdminAddr() != nil {
		t.Fatalf("admin listener at %v with admin off", g.AdminAddr())
	}
	mux := http.NewServeMux()
	mux.Handle("/ops/upgate/", http.StripPrefix("/ops/upgate", g.AdminHandler()))
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "the program's own") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := func(path string) string { return srv.URL + "/ops/upgate" + path }

	sub, id := dialID(t, g, "/ws/news")
	eventually(t, "subscription", func() bool { return g.Subscribers("news") == 1 })
	ans := doJSON(t, "POST", url("/publish/news"), []byte("hello"), 200)
	if ans["delivered"] != 1.0 || ans["topic"] != "news" {
		t.Fatalf("publish: got %v; want 1 delivered to news", ans)
	}
	expectMessage(t, sub, websocket.TextMessage, []byte("hello"))

	status, hdr, body := do(t, "GET", url("/metrics"), nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: got %d %q; want 200 text/plain", status, hdr.Get("Content-Type"))
	}
	for _, want := range []string{`upgate_publishes_total{route="",source="api"} 1`, `upgate_websocket_connections_open{route="/ws/{topic}"} 1`, "go_goroutines "} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var buf bytes.Buffer
	if err := g.WriteMetrics(&buf); err != nil || !bytes.Contains(buf.Bytes(), []byte(`upgate_publishes_total{route="",source="api"} 1`)) {
		t.Errorf("WriteMetrics: %v, %d bytes without the publish", err, buf.Len())
	}

	// The other endpoints answer under the prefix too.
	path := fmt.Sprintf("/connections/%d", id)
	if ans := doJSON(t, "GET", url("/connections?topic=news"), nil, 200); ans["matched"] != 1.0 {
		t.Errorf("connections: got %v; want 1 matched", ans)
	}
	if ans := doJSON(t, "GET", url(path), nil, 200); ans["topic"] != "news" {
		t.Errorf("connection info: got %v; want topic news", ans)
	}
	doJSON(t, "POST", url(path+"/send"), []byte("you"), 200)
	expectMessage(t, sub, websocket.TextMessage, []byte("you"))
	doJSON(t, "GET", url("/healthz"), nil, 200)
	doJSON(t, "GET", url("/readyz"), nil, 200)
	doJSON(t, "DELETE", url(path+"?code=4001"), nil, 200)
	expectClose(t, sub, 4001)
	if status, _, _ := do(t, "GET", url("/nothing"), nil); status != 404 {
		t.Errorf("unknown path: got %d; want 404", status)
	}
	if status, _, body := do(t, "GET", srv.URL+"/hello", nil); status != 200 || string(body) != "the program's own" {
		t.Errorf("the program's route: got %d %q", status, body)
	}
}
