//go:build !race

package parser_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/upgate/upgate/parser"
)

// TestAllocations proves that a whole server-side handshake (parse,
// negotiate, validate, accept key, 101 response) allocates nothing once the
// request and the output buffer are warm, for every client in the corpus.
func TestAllocations(t *testing.T) {
	u := newUpgrader()
	for i, hs := range handshakes {
		in := []byte(hs.head)
		if err := u.upgrade(in); err != nil {
			t.Fatalf("#%d %s: %v", i, hs.name, err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := u.upgrade(in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("#%d %s: got %v allocs per handshake; want 0", i, hs.name, allocs)
		}
	}
}

// TestAllocationsByteAtATime proves that resuming costs no allocation.
func TestAllocationsByteAtATime(t *testing.T) {
	u := newUpgrader()
	in := []byte(handshakes[0].head)
	allocs := testing.AllocsPerRun(20, func() {
		u.req.Reset()
		for k := 1; k <= len(in); k++ {
			u.req.Parse(in[:k])
		}
		if !u.req.Done() {
			t.Fatal("head not complete")
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs; want 0", allocs)
	}
}

// TestProxyAllocations: PROXY v1 (IPv4) and v2 headers parse without
// allocating.
func TestProxyAllocations(t *testing.T) {
	inputs := [][]byte{
		[]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"),
		proxyV2(1, 0x11, v4block("10.0.0.1", "10.0.0.2", 1234, 80), nil),
		proxyV2(1, 0x21, v6block("2001:db8::1", "2001:db8::2", 1, 2), nil),
	}
	var h parser.ProxyHeader
	for i, in := range inputs {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := parser.ParseProxy(in, &h); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("#%d: got %v allocs; want 0", i, allocs)
		}
	}
}

// TestFieldTableFollowsInput: a Request's memory follows the field lines
// peers send, not the configured bound, so a generous MaxFields costs
// nothing until a head uses it.
func TestFieldTableFollowsInput(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := parser.NewRequest(parser.Limits{MaxHeadBytes: 1 << 20, MaxFields: 1 << 28})
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("NewRequest allocated %d bytes; want a small table", n)
	}
	head := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("x:\r\n", 1000) + "\r\n"
	if _, err := r.Parse([]byte(head)); err != nil {
		t.Fatal(err)
	}
	if r.NumFields() != 1001 {
		t.Fatalf("got %d fields; want 1001", r.NumFields())
	}
}
