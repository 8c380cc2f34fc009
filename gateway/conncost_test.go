//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package gateway

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/internal/testutil"
	"github.com/upgate/upgate/internal/wstest"
)

// dialIdle opens a WebSocket on sa with the handshake req, on a bare
// socket made with syscalls: it holds no Go heap, so that the heap a test
// measures is the server's. It returns the socket, which the caller closes.
func dialIdle(t *testing.T, sa *unix.SockaddrInet4, req, buf []byte) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		_ = unix.Close(fd)
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, req); err != nil {
		_ = unix.Close(fd)
		t.Fatal(err)
	}
	got := 0
	for !bytes.Contains(buf[:got], []byte("\r\n\r\n")) {
		n, err := unix.Read(fd, buf[got:])
		if err != nil || n <= 0 {
			_ = unix.Close(fd)
			t.Fatalf("read: %d %v", n, err)
		}
		got += n
	}
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101 ")) {
		_ = unix.Close(fd)
		t.Fatalf("%q", buf[:got])
	}
	return fd
}

// TestConnectionCost measures the heap held per idle WebSocket connection
// of a running gateway, loop and gnet included, on an echo route and on a
// pubsub route whose connections all subscribe to one topic. The clients
// are raw syscalls, so the heap counted is the server's. The bounds sit
// just above the figures measured, so that a regression fails.
func TestConnectionCost(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	t.Logf("sizes: connState %d bytes, subscriber %d bytes", unsafe.Sizeof(connState{}), unsafe.Sizeof(subscriber{}))
	for i, c := range []struct {
		path  string
		topic string
		max   float64 // bytes per idle connection
	}{
		{"/echo", "", 615},
		{"/ws/idle", "idle", 620},
	} {
		per := idleCost(t, c.path, c.topic, false)
		t.Logf("%s: heap per idle connection: %.0f bytes", c.path, per)
		if testing.Verbose() {
			// Again, to name what holds the bytes: sampling every
			// allocation adds some 30 bytes of its own to the heap.
			idleCost(t, c.path, c.topic, true)
		}
		if per > c.max {
			t.Errorf("#%d: %s: got %.0f bytes of heap per idle connection; want at most %.0f", i, c.path, per, c.max)
		}
	}
}

// idleCost opens idle connections on path (subscribers of topic, when
// not "") of a gateway of its own and returns the heap they hold, per
// connection. With sites, every allocation is sampled meanwhile and the
// sites still holding 8 bytes or more per connection are logged, largest
// first.
func idleCost(t *testing.T, path, topic string, sites bool) float64 {
	const idle = 2000
	cfg := testConfig()
	cfg.Limits.MaxConnections = 2 * idle
	g := startGateway(t, cfg)
	ta := g.Addr().(*net.TCPAddr)
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	req := wstest.UpgradeRequest(path)
	buf := make([]byte, 4096)
	fds := make([]int, 0, idle+10)
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		eventually(t, "connections to close", func() bool { return g.Connections() == 0 })
	}()

	// A few first, so that what is made once (the topic, buffers) is not
	// counted.
	for range 10 {
		fds = append(fds, dialIdle(t, sa, req, buf))
	}
	eventually(t, "warm-up connections to open", func() bool { return g.Connections() == len(fds) })

	var m0, m1 runtime.MemStats
	var before map[string]int64
	old := runtime.MemProfileRate
	if sites {
		before = heapSites()
		runtime.MemProfileRate = 1
	}
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for range idle {
		fds = append(fds, dialIdle(t, sa, req, buf))
	}
	eventually(t, "connections to open", func() bool { return g.Connections() == len(fds) })
	if topic != "" {
		eventually(t, "subscriptions", func() bool { return g.Subscribers(topic) == len(fds) })
	}
	runtime.MemProfileRate = old
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / idle
	if !sites {
		return per
	}
	after := heapSites()
	type site struct {
		name  string
		bytes int64
	}
	var held []site
	for k, b := range after {
		if d := b - before[k]; d >= 8*idle {
			held = append(held, site{k, d})
		}
	}
	slices.SortFunc(held, func(a, b site) int { return cmp.Compare(b.bytes, a.bytes) })
	for _, h := range held {
		t.Logf("  %s: %4.0f B per connection held by %s", path, float64(h.bytes)/idle, h.name)
	}
	return per
}

// heapSites returns the heap bytes in use by allocating site: the first
// function outside the runtime, with its caller when that function is a
// constructor of the standard library or x/sys.
func heapSites() map[string]int64 {
	out := map[string]int64{}
	for _, r := range testutil.MemRecords(false) {
		frames := runtime.CallersFrames(r.Stack())
		var site []string
		for {
			fr, more := frames.Next()
			if !strings.HasPrefix(fr.Function, "runtime.") {
				site = append(site, fmt.Sprintf("%s (%s:%d)", fr.Function, filepath.Base(fr.File), fr.Line))
				if strings.HasPrefix(fr.Function, "github.com/") {
					break
				}
			}
			if !more {
				break
			}
		}
		out[strings.Join(site, " < ")] += r.InUseBytes()
	}
	return out
}
