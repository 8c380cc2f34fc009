package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browserPage opens a WebSocket to the gateway, sends text (ASCII, non-ASCII,
// 70 000 bytes) and binary messages, checks their echoes, closes with 1000,
// and reports through POST /result and into the DOM. The image that
// /hold serves only once the result is in delays the page's load event, so
// that --dump-dom shows the result too.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>upgate</title></head>
<body><pre id="result">pending</pre>
<script>
const out = document.getElementById('result');
let done = false;
function finish(r) {
  if (done) return;
  done = true;
  const text = JSON.stringify(r);
  out.textContent = text;
  fetch('/result', {method: 'POST', body: text});
}
setTimeout(() => finish({ok: false, error: 'timeout in the page'}), 15000);
try {
  const ws = new WebSocket(%q);
  ws.binaryType = 'arraybuffer';
  const sent = ['hello from chromium', 'ünïcödé ✓ 😀', 'x'.repeat(70000)];
  const bin = [0, 1, 2, 127, 128, 253, 254, 255];
  const got = [];
  ws.onopen = () => {
    for (const s of sent) ws.send(s);
    ws.send(new Uint8Array(bin));
  };
  ws.onmessage = (e) => {
    got.push(typeof e.data === 'string' ? e.data : 'binary:' + Array.from(new Uint8Array(e.data)).join(','));
    if (got.length < sent.length + 1) return;
    const echoed = sent.every((s, i) => got[i] === s) && got[sent.length] === 'binary:' + bin.join(',');
    const extensions = ws.extensions, protocol = ws.protocol;
    ws.onclose = (c) => finish({ok: echoed, extensions, protocol, messages: got.length, closeCode: c.code,
      lengths: got.map((g) => g.length)});
    ws.close(1000, 'done');
  };
  ws.onerror = () => finish({ok: false, error: 'websocket error', messages: got.length});
  ws.onclose = (c) => finish({ok: false, error: 'closed early', closeCode: c.code, messages: got.length});
} catch (e) {
  finish({ok: false, error: String(e)});
}
</script>
<img src="/hold" alt="">
</body></html>
`

type browserResult struct {
	OK         bool   `json:"ok"`
	Error      string `json:"error"`
	Extensions string `json:"extensions"`
	Protocol   string `json:"protocol"`
	Messages   int    `json:"messages"`
	CloseCode  int    `json:"closeCode"`
	Lengths    []int  `json:"lengths"`
}

// headProxy forwards TCP connections to target and keeps the first bytes
// each way of the first connection: the browser's request head and the
// gateway's response head.
type headProxy struct {
	ln       net.Listener
	mu       sync.Mutex
	request  bytes.Buffer
	response bytes.Buffer
}

func newHeadProxy(t *testing.T, target string) *headProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &headProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target, first)
		}
	}()
	return p
}

func (p *headProxy) serve(c net.Conn, target string, record bool) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	copyHead := func(dst io.Writer, src io.Reader, head *bytes.Buffer) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if record {
					p.mu.Lock()
					if head.Len() < 4096 {
						head.Write(buf[:min(n, 4096-head.Len())])
					}
					p.mu.Unlock()
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		copyHead(up, c, &p.request)
		up.(*net.TCPConn).CloseWrite()
	}()
	copyHead(c, up, &p.response)
}

// heads returns the recorded request and response heads.
func (p *headProxy) heads() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	head := func(b *bytes.Buffer) string {
		s := b.String()
		if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
			s = s[:i]
		}
		return s
	}
	return head(&p.request), head(&p.response)
}

// envSkipBrowser, set to 1, skips the browser test on a developer's
// machine; CI ignores it.
const envSkipBrowser = "UPGATE_TEST_SKIP_BROWSER"

// browserSkip decides whether the browser test skips, and says why or why
// the request to skip it is ignored: CI (CI set, but not to false or 0)
// always runs it.
func browserSkip(getenv func(string) string) (skip bool, note string) {
	v := getenv(envSkipBrowser)
	switch {
	case v == "" || v == "0":
		return false, ""
	case v != "1":
		return false, fmt.Sprintf("%s=%s ignored: set it to 1 to skip the browser test", envSkipBrowser, v)
	case onCI(getenv):
		return false, fmt.Sprintf("%s=1 ignored: CI=%s always runs the browser test", envSkipBrowser, getenv("CI"))
	}
	return true, envSkipBrowser + "=1"
}

// onCI reports whether the tests run under CI.
func onCI(getenv func(string) string) bool {
	switch strings.ToLower(getenv("CI")) {
	case "", "0", "false":
		return false
	}
	return true
}

// TestBrowserChromium drives headless Chromium against the gateway:
// Chromium offers permessage-deflate, the gateway accepts it without
// context takeover, and messages round-trip compressed (the 70000-byte
// text) and not (the short ones, under the threshold).
func TestBrowserChromium(t *testing.T) {
	chromium := findChromium(t)
	p := startUpgate(t, nil)
	proxy := newHeadProxy(t, p.addr)
	run := runChromium(t, chromium, "ws://"+proxy.ln.Addr().String()+"/echo")
	res := run.result(t)
	if !res.OK {
		t.Errorf("the page failed: %s", run.raw)
	}
	if res.Extensions != pmdAnswer {
		t.Errorf("ws.extensions = %q, want %q", res.Extensions, pmdAnswer)
	}
	if res.CloseCode != 1000 {
		t.Errorf("close code %d, want 1000", res.CloseCode)
	}
	request, response := proxy.heads()
	if !strings.Contains(strings.ToLower(request), "sec-websocket-extensions: permessage-deflate") {
		t.Errorf("chromium did not offer permessage-deflate; its request head:\n%s", request)
	}
	if !strings.HasPrefix(response, "HTTP/1.1 101") || headerValue(response, "Sec-WebSocket-Extensions") != pmdAnswer {
		t.Errorf("gateway response head:\n%s\nwant 101 with Sec-WebSocket-Extensions: %s", response, pmdAnswer)
	}
	run.checkDOM(t)
	t.Logf("chromium: %s; offered: %q", run.raw, headerValue(request, "Sec-WebSocket-Extensions"))
}

// findChromium returns the path of Chromium, or skips the test when it is
// not installed or the browser test is skipped (browserSkip).
func findChromium(t *testing.T) string {
	t.Helper()
	skip, note := browserSkip(os.Getenv)
	if skip {
		t.Skip("skipping: " + note)
	}
	if note != "" {
		t.Log(note)
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("skipping: chromium is not installed (./scripts/test.sh installs Debian's chromium package)")
	return ""
}

// chromiumRun is headless Chromium showing browserPage, run by
// runChromium.
type chromiumRun struct {
	raw    string // the result the page posted
	waited chan error
	dom    *bytes.Buffer // what --dump-dom printed; read once waited said so
}

// runChromium serves browserPage for wsURL and loads it in headless
// Chromium with flags added to the usual ones; it returns once the page
// posted its result (the test fails if it does not within 45s). Chromium
// is killed when the test ends.
func runChromium(t *testing.T, chromium, wsURL string, flags ...string) *chromiumRun {
	t.Helper()
	results := make(chan string, 1)
	got := make(chan struct{})
	var once sync.Once
	page := fmt.Sprintf(browserPage, wsURL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		case "/result":
			body, _ := io.ReadAll(r.Body)
			once.Do(func() {
				results <- string(body)
				close(got)
			})
		case "/hold":
			select {
			case <-got:
			case <-time.After(20 * time.Second):
			case <-r.Context().Done():
			}
			w.Header().Set("Content-Type", "image/gif")
			w.Write([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
		"--user-data-dir=" + profile}, flags...)
	cmd := exec.CommandContext(ctx, chromium, append(args, "--dump-dom", srv.URL+"/page")...)
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	// Chromium starts helper processes: a group of its own lets the test end
	// them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var dom, chromeErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &dom, &chromeErr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	run := &chromiumRun{waited: make(chan error, 1), dom: &dom}
	go func() { run.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})

	select {
	case run.raw = <-results:
	case err := <-run.waited:
		t.Fatalf("chromium exited (%v) before the page reported; stderr:\n%s\nDOM:\n%s", err, chromeErr.String(), dom.String())
	case <-ctx.Done():
		t.Fatalf("no result from the page within 45s; chromium stderr:\n%s", chromeErr.String())
	}
	return run
}

// result parses the page's result.
func (r *chromiumRun) result(t *testing.T) browserResult {
	t.Helper()
	var res browserResult
	if err := json.Unmarshal([]byte(r.raw), &res); err != nil {
		t.Fatalf("result %q: %v", r.raw, err)
	}
	return res
}

// checkDOM waits for Chromium to exit: --dump-dom prints the page once it
// loaded, with the result in it.
func (r *chromiumRun) checkDOM(t *testing.T) {
	t.Helper()
	select {
	case <-r.waited:
		if !strings.Contains(r.dom.String(), `"ok":true`) {
			t.Errorf("the DOM chromium dumped does not hold the result:\n%s", r.dom.String())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("chromium did not exit within 15s of the result")
	}
}

// headerValue returns the value of the named field in an HTTP head.
func headerValue(head, name string) string {
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
