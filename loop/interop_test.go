//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"
)

// interopSizes are the message sizes every independent client echoes.
var interopSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20}

func interopServer(t *testing.T) (*Server, *testHandler, string) {
	o := testOptions()
	o.MaxMessage = 4 << 20
	h := newTestHandler()
	s := startServer(t, h, o)
	return s, h, "ws://" + s.Addr().String() + "/ws"
}

func TestInteropGorilla(t *testing.T) {
	_, h, url := interopServer(t)
	d := websocket.Dialer{HandshakeTimeout: testTimeout, Subprotocols: []string{"chat"}}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Subprotocol() != "chat" || resp.StatusCode != 101 {
		t.Fatalf("subprotocol %q, status %d", c.Subprotocol(), resp.StatusCode)
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	c.SetReadLimit(4 << 20)
	for _, n := range interopSizes {
		for _, typ := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			p := pattern(n, typ == websocket.TextMessage)
			// gorilla splits messages larger than its 4 KiB write buffer
			// into several frames: the big sizes are fragmented messages.
			if err := c.WriteMessage(typ, p); err != nil {
				t.Fatal(err)
			}
			gt, got, err := c.ReadMessage()
			if err != nil || gt != typ || !bytes.Equal(got, p) {
				t.Fatalf("size %d type %d: got type %d, %d bytes, %v", n, typ, gt, len(got), err)
			}
		}
	}
	gorillaFragmented(t, c)
	// Ping/pong.
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("gorilla-ping"), time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("after ping")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "after ping" {
		t.Fatalf("%q %v", got, err)
	}
	if got := <-pong; got != "gorilla-ping" {
		t.Fatalf("pong %q", got)
	}
	// Close code echo.
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(3001, "bye")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 3001 {
		t.Fatalf("close: %v", err)
	}
	_ = c.Close()
	if ci := h.waitClose(t); ci.code != 3001 || ci.err != nil {
		t.Fatalf("OnClose %+v", ci)
	}
}

func TestInteropCoder(t *testing.T) {
	_, h, url := interopServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := coder.Dial(ctx, url, &coder.DialOptions{Subprotocols: []string{"superchat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "superchat" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	c.SetReadLimit(4 << 20)
	type msgT struct {
		typ coder.MessageType
		p   []byte
		err error
	}
	// Ping needs a concurrent reader: read in the background.
	in := make(chan msgT, 16)
	go func() {
		for {
			typ, p, err := c.Read(ctx)
			in <- msgT{typ, p, err}
			if err != nil {
				return
			}
		}
	}()
	next := func() msgT {
		select {
		case m := <-in:
			return m
		case <-ctx.Done():
			t.Fatal("timeout")
			return msgT{}
		}
	}
	for _, n := range interopSizes {
		for _, typ := range []coder.MessageType{coder.MessageText, coder.MessageBinary} {
			p := pattern(n, typ == coder.MessageText)
			if err := c.Write(ctx, typ, p); err != nil {
				t.Fatal(err)
			}
			if m := next(); m.err != nil || m.typ != typ || !bytes.Equal(m.p, p) {
				t.Fatalf("size %d: got %d bytes, %v", n, len(m.p), m.err)
			}
		}
	}
	// Each Write of a Writer is one frame: a fragmented message.
	w, err := c.Writer(ctx, coder.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_, _ = w.Write(pattern(1000+i, false))
	}
	_ = w.Close()
	var want []byte
	for i := range 5 {
		want = append(want, pattern(1000+i, false)...)
	}
	if m := next(); m.err != nil || !bytes.Equal(m.p, want) {
		t.Fatalf("fragmented: %d bytes, %v", len(m.p), m.err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(3002, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	if ci := h.waitClose(t); ci.code != 3002 || ci.err != nil {
		t.Fatalf("OnClose %+v", ci)
	}
}

func TestInteropGobwas(t *testing.T) {
	_, h, url := interopServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{r, conn}
	for _, n := range interopSizes {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
			p := pattern(n, op == ws.OpText)
			if err := wsutil.WriteClientMessage(conn, op, p); err != nil {
				t.Fatal(err)
			}
			got, gop, err := wsutil.ReadServerData(rw)
			if err != nil || gop != op || !bytes.Equal(got, p) {
				t.Fatalf("size %d: got op %d, %d bytes, %v", n, gop, len(got), err)
			}
		}
	}
	// Fragmented with a ping inside.
	for _, f := range []ws.Frame{
		ws.NewFrame(ws.OpText, false, []byte("abc")),
		ws.NewPingFrame([]byte("gobwas-ping")),
		ws.NewFrame(ws.OpContinuation, true, []byte("def")),
	} {
		if err := ws.WriteFrame(conn, ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := wsutil.ReadServerMessage(r, nil)
	if err != nil || len(msgs) != 1 || msgs[0].OpCode != ws.OpPong || string(msgs[0].Payload) != "gobwas-ping" {
		t.Fatalf("pong: %v %v", msgs, err)
	}
	msgs, err = wsutil.ReadServerMessage(r, nil)
	if err != nil || len(msgs) != 1 || string(msgs[0].Payload) != "abcdef" {
		t.Fatalf("fragmented: %v %v", msgs, err)
	}
	// Close code echo.
	if err := ws.WriteFrame(conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(3003, "bye")))); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(r)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("close: %v %v", f.Header, err)
	}
	if code, _ := ws.ParseCloseFrameData(f.Payload); code != 3003 {
		t.Fatalf("close code %d", code)
	}
	if _, err := ws.ReadFrame(r); err != io.EOF {
		t.Fatalf("want EOF after the close frame, got %v", err)
	}
	_ = conn.Close()
	if ci := h.waitClose(t); ci.code != 3003 || ci.err != nil {
		t.Fatalf("OnClose %+v", ci)
	}
}

// TestInteropNode drives scripts/node/ws-client.mjs (the node "ws" package).
// It needs node and UPGATE_TEST_NODE_MODULES, which scripts/test.sh exports.
func TestInteropNode(t *testing.T) {
	mods := os.Getenv("UPGATE_TEST_NODE_MODULES")
	if mods == "" {
		t.Skip("UPGATE_TEST_NODE_MODULES is not set (scripts/test.sh sets it): node interop skipped")
	}
	if _, err := os.Stat(filepath.Join(mods, "ws", "package.json")); err != nil {
		t.Skipf("UPGATE_TEST_NODE_MODULES=%s has no ws package: node interop skipped", mods)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: node interop skipped")
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "node", "ws-client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("%s not found: node interop skipped", script)
	}
	_, h, url := interopServer(t)
	closeScript := filepath.Join(t.TempDir(), "close.json")
	if err := os.WriteFile(closeScript, []byte(`{"steps": [
		{"op": "echo", "count": 1, "sizes": [3]},
		{"op": "close", "code": 3000, "reason": "node bye", "expectCode": 3000}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		name string
		args []string
		code int
	}{
		{"echo", []string{"echo", url, "2", "0", "1", "125", "126", "127", "65535", "65536", "1m"}, 1000},
		{"frag", []string{"frag", url}, 1000},
		{"close-code", []string{url, closeScript}, 3000},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, append([]string{script, "--timeout=25000"}, r.args...)...)
			cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var res struct {
				OK        bool   `json:"ok"`
				Error     string `json:"error"`
				Messages  int    `json:"messages"`
				CloseCode int    `json:"closeCode"`
			}
			line := bytes.TrimSpace(out)
			if jerr := json.Unmarshal(line, &res); jerr != nil || err != nil || !res.OK {
				t.Fatalf("node client: %v / %v\nstdout: %s\nstderr: %s", err, jerr, line, stderr.String())
			}
			if res.CloseCode != r.code {
				t.Fatalf("close code %d, want %d", res.CloseCode, r.code)
			}
			if ci := h.waitClose(t); int(ci.code) != r.code || ci.err != nil {
				t.Fatalf("OnClose %+v", ci)
			}
			t.Logf("node: %s", line)
		})
	}
}

// gorillaFragmented sends a text message in three frames through gorilla
// client c and checks that it comes back whole.
func gorillaFragmented(t *testing.T, c *websocket.Conn) {
	t.Helper()
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"frag", "men", "ted é"} {
		_, _ = w.Write([]byte(part))
	}
	_ = w.Close()
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "fragmented é" {
		t.Fatalf("fragmented: got %q, %v; want %q", got, err, "fragmented é")
	}
}
