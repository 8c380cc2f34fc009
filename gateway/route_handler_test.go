package gateway

import (
	"errors"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// tagHandler answers every message with its tag and the message, written
// on the loop.
type tagHandler struct {
	nopHandler
	tag string
}

func (h tagHandler) OnMessage(c Conn, op OpCode, p []byte) {
	_ = c.Write(op, append([]byte(h.tag+":"), p...))
}

// TestRouteHandlers gives each Custom route its own Handler, one route
// WithHandler's default, and checks that the Authorizer of one route's
// Handler judges that route only.
func TestRouteHandlers(t *testing.T) {
	auth := newRecorder()
	g := startGateway(t, testConfig(
		Route{Path: "/a", Behaviour: Custom, Handler: tagHandler{tag: "a"}},
		Route{Path: "/b/{topic}", Behaviour: Custom, Handler: auth},
		Route{Path: "/c", Behaviour: Custom},
		Route{Path: "/d", Behaviour: Custom, Handler: tagHandler{tag: "d"}},
	), WithHandler(tagHandler{tag: "default"}))

	for i, c := range []struct{ path, want string }{
		{"/a", "a:hi"}, {"/c", "default:hi"}, {"/d", "d:hi"},
	} {
		ws := dial(t, g, c.path, nil) // no token: these handlers do not authorize
		if err := ws.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		expectMessage(t, ws, websocket.TextMessage, []byte(c.want))
	}

	resp := dialStatus(t, g, "/b/x", nil, 401)
	_ = resp.Body.Close()
	ws := dial(t, g, "/b/x", http.Header{"X-Token": {"secret"}})
	expectMessage(t, ws, websocket.TextMessage, []byte("welcome x"))
	if o := recv(t, auth.opens); o.c.Route() != "/b/{topic}" {
		t.Fatalf("OnOpen of route %q; want /b/{topic}", o.c.Route())
	}
}

func TestRouteHandlerConfig(t *testing.T) {
	for i, c := range []struct {
		routes []Route
		opts   []Option
		key    string // "" for no error
	}{
		{[]Route{{Path: "/e", Behaviour: Echo}, {Path: "/c", Behaviour: Custom}}, nil, "routes[1].behaviour"},
		{[]Route{{Path: "/c", Behaviour: Custom}}, []Option{WithHandler(nil)}, "routes[0].behaviour"},
		{[]Route{{Path: "/c", Behaviour: Custom}}, []Option{WithHandler(nopHandler{})}, ""},
		{[]Route{{Path: "/c", Behaviour: Custom, Handler: nopHandler{}}}, nil, ""},
		{[]Route{{Path: "/e", Behaviour: Echo, Handler: nopHandler{}}}, nil, "routes[0].behaviour"},
		{[]Route{{Path: "/p/{topic}", Behaviour: PubSub, Handler: nopHandler{}}}, []Option{WithHandler(nopHandler{})}, "routes[0].behaviour"},
	} {
		cfg := testConfig(c.routes...)
		_, err := New(cfg, append([]Option{WithLogger(quietLogger())}, c.opts...)...)
		var ce *ConfigError
		switch {
		case c.key == "" && err != nil:
			t.Errorf("#%d: got %v; want no error", i, err)
		case c.key != "" && !errors.As(err, &ce):
			t.Errorf("#%d: got %v; want a *ConfigError for %s", i, err, c.key)
		case c.key != "" && ce.Key != c.key:
			t.Errorf("#%d: got key %s (%v); want %s", i, ce.Key, err, c.key)
		}
	}
}
