package bus

import "testing"

// TestNames: every kind, reason and outcome has a distinct label value;
// numbers out of range have none.
func TestNames(t *testing.T) {
	for i, tt := range []struct {
		what string
		n    int
		name func(int) string
	}{
		{"kind", NumKinds, KindName},
		{"reason", NumReasons, ReasonName},
		{"outcome", NumOutcomes, OutcomeName},
	} {
		seen := map[string]bool{}
		for k := range tt.n {
			got := tt.name(k)
			if got == "" || seen[got] {
				t.Errorf("#%d: %s %d: got %q; want a name of its own", i, tt.what, k, got)
			}
			seen[got] = true
		}
		for _, k := range []int{-1, tt.n} {
			if got := tt.name(k); got != "" {
				t.Errorf("#%d: %s %d: got %q; want \"\"", i, tt.what, k, got)
			}
		}
	}
	if got := ReasonName(ReasonLoopBehind); got != "loop_behind" {
		t.Errorf("ReasonName(ReasonLoopBehind): got %q; want \"loop_behind\"", got)
	}
}
