//go:build !race

package deflate_test

import (
	"testing"

	"github.com/upgate/upgate/loop/deflate"
)

// The race detector allocates on its own, so this test runs without it.

// TestNegotiateAllocations proves that negotiating an offer and writing the
// response allocate nothing, for accepted, declined and malformed offers.
func TestNegotiateAllocations(t *testing.T) {
	tests := []struct {
		lines []string
		cfg   deflate.Config
	}{
		{[]string{pmd + "; client_max_window_bits"}, defCfg},
		{[]string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12"}, defCfg},
		{[]string{pmd + `; client_max_window_bits="10"`}, takeCfg},
		{[]string{"x-webkit-deflate-frame", pmd + "; server_max_window_bits=8, " + pmd}, min10},
		{[]string{pmd + "; foo, " + pmd + "; server_max_window_bits=16"}, defCfg},
		{[]string{pmd + ", x; a="}, defCfg},
	}
	dst := make([]byte, 0, deflate.MaxResponseLen)
	for i, tt := range tests {
		r := negParse(t, tt.lines...)
		allocs := testing.AllocsPerRun(100, func() {
			it := r.Extensions()
			p, ok, _ := deflate.Negotiate(&it, tt.cfg)
			if ok {
				dst = deflate.AppendResponse(dst[:0], p)
			}
		})
		if allocs != 0 {
			t.Errorf("#%d %q: got %v allocs; want 0", i, tt.lines, allocs)
		}
	}
}
