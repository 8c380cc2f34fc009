package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/testutil"
)

// upperProto is a registered stream protocol that answers every byte in
// upper case and records its connections' ends.
type upperProto struct {
	opened chan *Request
	ended  chan error
}

func newUpperProto() *upperProto {
	return &upperProto{opened: make(chan *Request, 64), ended: make(chan error, 64)}
}

func (u *upperProto) OnStreamOpen(c Conn, r *Request) {
	u.opened <- r
	_ = c.WriteData([]byte("hi " + c.Protocol() + "\n"))
}
func (u *upperProto) OnData(c Conn, p []byte)         { _ = c.WriteData(bytes.ToUpper(p)) }
func (u *upperProto) OnStreamClose(c Conn, err error) { u.ended <- err }

func startProtocols(t *testing.T) (*Gateway, *upperProto) {
	t.Helper()
	u := newUpperProto()
	cfg := testConfig(
		Route{Path: "/s", Behaviour: Stream, Protocols: []string{"foo"}},
		Route{Path: "/both", Behaviour: Echo, Protocols: []string{"foo"}},
		Route{Path: "/plain", Behaviour: Stream, Protocols: []string{"foo"}, PlainHTTP: true},
		Route{Path: "/ws", Behaviour: Echo},
	)
	g := startGateway(t, cfg, WithProtocol(Protocol{Name: "foo", Versions: []string{"2", "1"}, Handler: u}))
	return g, u
}

// rawUpgrade sends a request asking for upgrade, with extra bytes right
// behind its head in the same write, and reads the response head.
func rawUpgrade(t *testing.T, g *Gateway, path, upgrade, extra string, more ...string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", g.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testutil.Timeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
	if upgrade != "" {
		req += "Upgrade: " + upgrade + "\r\n"
	}
	for _, m := range more {
		req += m + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"+extra); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s %q: reading the response: %v", path, upgrade, err)
	}
	return nc, br, resp
}

func TestProtocolNegotiation(t *testing.T) {
	g, u := startProtocols(t)
	wsHeaders := []string{"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}
	tests := []struct {
		path, upgrade string
		ws            bool // send a valid WebSocket handshake's fields
		status        int
		upgradeResp   string
	}{
		// The seed's example: the client prefers example/1, then foo/2.
		{"/s", "example/1, foo/2", false, 101, "foo/2"},
		{"/s", "example/1, foo/3", false, 426, "foo/2, foo/1"},
		{"/plain", "example/1, foo/3", false, 200, ""},
		{"/s", "FOO/1", false, 101, "foo/1"},
		{"/s", "  foo/2 ,example", false, 101, "foo/2"},
		{"/s", "foo", false, 101, "foo/2"}, // no version: the gateway's first
		{"/s", "h2c, foo/1", false, 101, "foo/1"},
		{"/s", "websocket", true, 426, "foo/2, foo/1"},
		{"/s", "", false, 426, "foo/2, foo/1"},
		{"/both", "websocket, foo/2", true, 101, "websocket"},
		{"/both", "foo/2, websocket", true, 101, "foo/2"},
		{"/both", "foo/2, websocket", false, 101, "foo/2"}, // the broken WebSocket offer is not chosen
		{"/both", "websocket, foo/2", false, 400, ""},      // chosen, and broken
		{"/both", "example/1", false, 426, "foo/2, foo/1, websocket"},
		{"/ws", "foo/2", false, 426, "websocket"},
		{"/ws", "websocket", false, 400, ""},
		{"/healthz", "websocket", false, 400, ""},
	}
	for i, tt := range tests {
		var more []string
		if tt.ws {
			more = wsHeaders
		}
		_, _, resp := rawUpgrade(t, g, tt.path, tt.upgrade, "", more...)
		if resp.StatusCode != tt.status {
			t.Errorf("#%d %s %q: got %d; want %d", i, tt.path, tt.upgrade, resp.StatusCode, tt.status)
			continue
		}
		if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, tt.upgradeResp) {
			t.Errorf("#%d %s %q: got Upgrade %q; want %q", i, tt.path, tt.upgrade, got, tt.upgradeResp)
		}
		if tt.status == 101 && tt.upgradeResp != "websocket" {
			if r := <-u.opened; r.Protocol != tt.upgradeResp || r.Route != tt.path {
				t.Errorf("#%d: OnStreamOpen got protocol %q route %q; want %q %q", i, r.Protocol, r.Route, tt.upgradeResp, tt.path)
			}
		}
	}
}

func TestProtocolStream(t *testing.T) {
	g, u := startProtocols(t)
	nc, br, resp := rawUpgrade(t, g, "/s", "foo/2", "early bytes")
	if resp.StatusCode != 101 {
		t.Fatalf("got %d; want 101", resp.StatusCode)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "hi foo/2\n" {
		t.Fatalf("got %q, %v; want the greeting", line, err)
	}
	got := make([]byte, len("EARLY BYTES"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "EARLY BYTES" {
		t.Errorf("bytes sent with the head: got %q, %v", got, err)
	}
	io.WriteString(nc, "later")
	got = got[:5]
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "LATER" {
		t.Errorf("got %q, %v; want LATER", got, err)
	}
	// The stream is listed, and closed, by id, as any connection is.
	var id uint64
	g.conns.each(func(c Conn) bool { id = c.ID(); return false })
	if err := g.Disconnect(id, 1000, ""); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after Disconnect: got %v; want EOF", err)
	}
	if err := <-u.ended; err != nil {
		t.Errorf("OnStreamClose: got %v; want nil", err)
	}
	testutil.Eventually(t, "the slot is released", func() bool { return g.open.Load() == 0 })
}

func TestProtocolRegistry(t *testing.T) {
	u := newUpperProto()
	tests := []struct {
		protos []Protocol
		routes []Route
		want   string
	}{
		{nil, []Route{{Path: "/s", Behaviour: Stream, Protocols: []string{"foo"}}}, `no protocol "foo"`},
		{[]Protocol{{Name: "foo"}}, nil, "has no Handler"},
		{[]Protocol{{Name: "foo", Handler: u}, {Name: "FOO", Handler: u}}, nil, "registered twice"},
		{[]Protocol{{Name: "websocket", Handler: u}}, nil, "reserved"},
		{[]Protocol{{Name: "a b", Handler: u}}, nil, "not an HTTP token"},
		{[]Protocol{{Name: "foo", Versions: []string{"1/2"}, Handler: u}}, nil, "not an HTTP token"},
		{nil, []Route{{Path: "/e", Behaviour: Echo, Protocols: []string{"tcp"}}}, "does not speak tcp"},
	}
	for i, tt := range tests {
		var opts []Option
		for _, p := range tt.protos {
			opts = append(opts, WithProtocol(p))
		}
		cfg := testConfig(tt.routes...)
		_, err := New(cfg, opts...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("#%d: got %v; want an error with %q", i, err, tt.want)
		}
	}
	cfg := testConfig(Route{Path: "/s", Behaviour: Stream})
	var ce *ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Key != "routes[0].protocols" {
		t.Errorf("a stream route without protocols: got %v; want a ConfigError on routes[0].protocols", err)
	}
}
