// agg prints inuse bytes per connection grouped by (object size, allocation site, first caller inside crypto/tls or main).
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

func load(p string) *profile.Profile {
	f, err := os.Open(p)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	pr, err := profile.Parse(f)
	if err != nil {
		panic(err)
	}
	return pr
}

func frames(s *profile.Sample) []string {
	var out []string
	for _, l := range s.Location {
		for _, ln := range l.Line { // innermost (inlined) first, caller last
			out = append(out, fmt.Sprintf("%s:%d", ln.Function.Name, ln.Line))
		}
	}
	return out
}

func key(s *profile.Sample) string {
	fr := frames(s)
	// first frame that is in crypto/tls or main, plus the leaf
	var ctx string
	for _, f := range fr {
		if strings.HasPrefix(f, "crypto/tls.") || strings.HasPrefix(f, "main.") {
			ctx = f
			break
		}
	}
	size := s.NumLabel["bytes"]
	sz := "?"
	if len(size) > 0 {
		sz = strconv.FormatInt(size[0], 10)
	}
	leaf := ""
	if len(fr) > 0 {
		leaf = fr[0]
	}
	return fmt.Sprintf("%6sB  %s  <- %s", sz, trim(leaf), trim(ctx))
}

func trim(s string) string {
	s = strings.ReplaceAll(s, "[go.shape.interface { BlockSize int; Reset; Size int; Sum []uint8; Write  }]", "[...]")
	return s
}

func main() {
	before, after := load(os.Args[1]), load(os.Args[2])
	n, _ := strconv.Atoi(os.Args[3])
	idx := 3 // inuse_space
	agg := map[string]int64{}
	cnt := map[string]int64{}
	for _, s := range before.Sample {
		agg[key(s)] -= s.Value[idx]
		cnt[key(s)] -= s.Value[2]
	}
	for _, s := range after.Sample {
		agg[key(s)] += s.Value[idx]
		cnt[key(s)] += s.Value[2]
	}
	type kv struct {
		k string
		v int64
	}
	var l []kv
	var tot int64
	for k, v := range agg {
		tot += v
		if v/int64(n) >= 4 {
			l = append(l, kv{k, v})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	for _, e := range l {
		fmt.Printf("%7.1f B/conn  %5.2f obj/conn  %s\n", float64(e.v)/float64(n), float64(cnt[e.k])/float64(n), e.k)
	}
	fmt.Printf("%7.1f B/conn  total inuse delta\n", float64(tot)/float64(n))
}
