//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/wstest"
)

// tlsCostEnv carries "addr,n,curve" to the client process of
// TestTLSConnectionCost.
const tlsCostEnv = "UPGATE_TLS_COST_CLIENT"

// TestTLSConnectionCost measures the heap held per idle upgraded TLS
// connection, server side, with crypto/tls's record layer and with the
// loop's, before and after its ciphers are dropped: the clients run in
// another process (this test binary, as TestTLSCostClient). It logs the
// numbers and fails only well above them.
func TestTLSConnectionCost(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	const idle = 500
	type result struct{ open, released float64 }
	got := map[string]result{}
	for _, curve := range []string{"x25519", "default"} {
		for _, std := range []bool{true, false} {
			o := testOptions()
			o.NumLoops = 1
			o.TLSStdRecords = std
			o.TLSCipherIdle = 200 * time.Millisecond
			s, _, _ := startTLSEcho(t, o)
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			cmd := exec.Command(exe, "-test.run=^TestTLSCostClient$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%s", tlsCostEnv, s.Addr(), idle, curve))
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "ready") {
				_ = stdin.Close()
				_ = cmd.Wait()
				t.Fatalf("client: got %q, %v; want ready", line, err)
			}
			eventually(t, "connections to open", func() bool { return s.Stats().WebSocketsOpen == idle })
			heap := func() float64 {
				runtime.GC()
				runtime.ReadMemStats(&m1)
				return float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / idle
			}
			var r result
			r.open = heap()
			name := curve + "/record layer of the loop"
			if std {
				name = curve + "/crypto/tls record layer"
				if n := s.Stats().TLSHandovers; n != 0 {
					t.Errorf("%s: %d hand-overs; want 0", name, n)
				}
			} else {
				if n := s.Stats().TLSHandovers; n != idle {
					t.Errorf("%s: %d hand-overs; want %d", name, n, idle)
				}
				eventually(t, "idle connections to drop their ciphers", func() bool { return s.Stats().TLSCipherReleases >= idle })
				r.released = heap()
			}
			got[name] = r
			if std {
				t.Logf("%s: heap per idle upgraded TLS connection: %.0f bytes", name, r.open)
			} else {
				t.Logf("%s: heap per idle upgraded TLS connection: %.0f bytes, %.0f once every one dropped its ciphers", name, r.open, r.released)
			}
			_ = stdin.Close()
			_ = cmd.Wait()
		}
	}
	for name, r := range got {
		if r.open > 32<<10 {
			t.Errorf("%s: got %.0f bytes per idle TLS connection; want under 32 KiB", name, r.open)
		}
		if r.released > 2<<10 {
			t.Errorf("%s: got %.0f bytes per idle TLS connection without its ciphers; want under 2 KiB", name, r.released)
		}
	}
}

// TestTLSCostClient is the client process of TestTLSConnectionCost: it
// opens the connections, echoes one message on each, says "ready" and
// holds them until its input ends.
func TestTLSCostClient(t *testing.T) {
	arg := os.Getenv(tlsCostEnv)
	if arg == "" {
		t.Skip("the client process of TestTLSConnectionCost")
	}
	parts := strings.Split(arg, ",")
	n, _ := strconv.Atoi(parts[1])
	cfg := &tls.Config{InsecureSkipVerify: true} // a certificate made by the parent
	if parts[2] == "x25519" {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	p := pattern(100, true)
	for range n {
		c, err := tls.Dial("tcp", parts[0], cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		w := wstest.NewClient(t, c)
		w.Write(upgradeRequest("/ws"), msg(ws.OpText, p))
		w.ExpectSwitching()
		w.ExpectMessage(ws.OpText, p)
		_ = c.SetDeadline(time.Time{})
		defer c.Close()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
