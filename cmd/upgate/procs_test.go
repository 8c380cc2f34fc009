package main

import (
	"runtime"
	"testing"
)

func TestSpareProc(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const base = 4
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMAXPROCS" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		loops   int
		env     string
		want    int
		changed bool
	}{
		{base, "", base + 1, true},     // the loops take every P
		{base + 8, "", base + 1, true}, // more loops than Ps: still one more, not one per loop
		{base - 1, "", base, false},    // a P is free already
		{base, "4", base, false},       // the operator's GOMAXPROCS stands
		{base, "1", base, false},
	}
	for i, tt := range tests {
		runtime.GOMAXPROCS(base)
		got, changed := spareProc(tt.loops, env(tt.env))
		if got != tt.want || changed != tt.changed || runtime.GOMAXPROCS(0) != tt.want {
			t.Errorf("#%d: got %d, %v (GOMAXPROCS %d); want %d, %v", i, got, changed, runtime.GOMAXPROCS(0), tt.want, tt.changed)
		}
	}
}
