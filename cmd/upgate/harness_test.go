package main

// The end-to-end tests run the real binary, built once by TestMain (with the
// race detector when the tests have it), on loopback ports it picks itself;
// they read its addresses from its startup log lines.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testVersion is stamped into the binary the tests build.
const testVersion = "v0.0.0-e2e"

// upgateBin is the binary built by TestMain.
var upgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	upgateBin = filepath.Join(dir, "upgate")
	args := []string{"build", "-o", upgateBin, "-ldflags=-X main.version=" + testVersion}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(args, " "), err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childEnv is the environment of the binary: the test's, without any
// UPGATE_* variable, plus extra ("KEY=value"). A race-enabled binary exits
// without the race runtime's default one-second pause.
func childEnv(extra ...string) []string {
	var env []string
	gorace := "atexit_sleep_ms=0"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, envPrefix):
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
		default:
			env = append(env, kv)
		}
	}
	return append(append(env, "GORACE="+gorace), extra...)
}

// sink collects a stream's lines and wakes waiters on each new one.
type sink struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	changed chan struct{} // closed and replaced on each new line
}

func newSink() *sink { return &sink{changed: make(chan struct{})} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.lines = append(s.lines, string(s.partial[:i]))
		s.partial = s.partial[i+1:]
		added = true
	}
	if added {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return len(p), nil
}

// snapshot returns the lines so far and a channel closed on the next one.
func (s *sink) snapshot() ([]string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...), s.changed
}

func (s *sink) String() string {
	lines, _ := s.snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(lines, "\n") + string(s.partial)
}

// logRecord parses one log line, JSON or slog's text (logfmt), into its
// attributes; nil if it is neither.
func logRecord(line string) map[string]string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			return nil
		}
		rec := make(map[string]string, len(m))
		for k, v := range m {
			rec[k] = fmt.Sprint(v)
		}
		return rec
	}
	rec := map[string]string{}
	for line != "" {
		eq := strings.IndexByte(line, '=')
		if eq <= 0 || strings.ContainsAny(line[:eq], " \"") {
			return nil
		}
		key, rest := line[:eq], line[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			val, rest = rest[:sp], rest[sp:]
		} else {
			val, rest = rest, ""
		}
		rec[key] = val
		line = strings.TrimLeft(rest, " ")
	}
	return rec
}

// upgateProc is a running binary.
type upgateProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string // public listener, host:port, or "off"
	tls    string // TLS listener, host:port; "" without one
	admin  string // admin listener, host:port, or "off"
	stderr *sink
	stdout *sink
	exited chan struct{}
	state  *os.ProcessState // set when exited is closed
}

// startUpgate starts the binary on loopback ports it picks, with JSON logs,
// then args (later flags win), and waits until both listeners are announced.
// The process is stopped when the test ends.
func startUpgate(t testing.TB, env []string, args ...string) *upgateProc {
	t.Helper()
	return startUpgateVia(t, nil, env, args...)
}

// startUpgateVia is startUpgate with the binary run by a command that
// execs it (prefix, e.g. prlimit with its options and "--"), if any.
func startUpgateVia(t testing.TB, prefix []string, env []string, args ...string) *upgateProc {
	t.Helper()
	all := append([]string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json"}, args...)
	p := &upgateProc{t: t, stderr: newSink(), stdout: newSink(), exited: make(chan struct{})}
	argv := append(append(append([]string(nil), prefix...), upgateBin), all...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = childEnv(env...)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start upgate: %v", err)
	}
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.exited)
	}()
	t.Cleanup(p.stop)

	deadline := time.After(20 * time.Second)
	for {
		lines, changed := p.stderr.snapshot()
		for _, l := range lines {
			rec := logRecord(l)
			switch rec["msg"] {
			case "public listener":
				p.addr = rec["addr"]
			case "admin listener":
				p.admin = rec["addr"]
			case "tls listener":
				p.tls = rec["addr"]
			}
		}
		if p.addr != "" && p.admin != "" {
			return p
		}
		select {
		case <-changed:
		case <-p.exited:
			t.Fatalf("upgate %s exited before listening (%v):\n%s", strings.Join(all, " "), p.state, p.stderr)
		case <-deadline:
			t.Fatalf("upgate %s did not announce its listeners within 20s:\n%s", strings.Join(all, " "), p.stderr)
		}
	}
}

// signal sends sig to the process.
func (p *upgateProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Errorf("signal %v: %v", sig, err)
	}
}

// wait waits up to d for the process to exit and returns its exit status,
// or -1 if it is still running.
func (p *upgateProc) wait(d time.Duration) int {
	select {
	case <-p.exited:
		return p.state.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 15s) and fails the test
// if the race detector reported anything.
func (p *upgateProc) stop() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		if p.wait(15*time.Second) < 0 {
			p.t.Errorf("upgate did not exit within 15s of SIGTERM; killing it")
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if log := p.stderr.String(); strings.Contains(log, "DATA RACE") {
		p.t.Errorf("the race detector reported a race in upgate:\n%s", log)
	}
}

// wsURL returns the WebSocket URL of path on the public listener.
func (p *upgateProc) wsURL(path string) string { return "ws://" + p.addr + path }

// get fetches an admin or public URL and returns its status, headers and body.
func httpDo(t testing.TB, method, url string, body string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// metrics scrapes /metrics and returns each sample by its full name with
// labels, as written ("upgate_rejections_total{reason=\"origin\"}").
func (p *upgateProc) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	status, _, body := httpDo(t, "GET", "http://"+p.admin+"/metrics", "")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Errorf("metrics line %q: %v", line, err)
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// sum adds the samples of metric name whose labels contain every one of
// labels (`route="/echo"`).
func sum(m map[string]float64, name string, labels ...string) float64 {
	total := 0.0
next:
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(k, l) {
				continue next
			}
		}
		total += v
	}
	return total
}

// runUpgate runs the binary to completion (20s at most) and returns its
// standard output, standard error and exit status.
func runUpgate(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, upgateBin, args...)
	cmd.Env = childEnv(env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("upgate %q did not exit within 20s:\n%s", args, errOut.String())
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("upgate %q: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// writeFile writes a file in the test's temporary directory and returns its path.
func writeFile(t testing.TB, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
