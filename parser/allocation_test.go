//go:build !race

package parser_test

import "testing"

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
