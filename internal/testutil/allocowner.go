package testutil

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// Owners of an allocation, as AllocOwners names them.
const (
	OwnerUpgate = "upgate" // the project's code, outside test files
	OwnerGnet   = "gnet"   // gnet, and what it calls (x/sys, net)
	OwnerTest   = "test"   // the test's own code (clients)
	OwnerOther  = "other"
)

// AllocOwners runs fn n times with every allocation sampled, calls settle
// (which waits for the server to finish the work fn started), and returns
// the objects allocated in between by owner and allocating site. The owner
// is found by walking the stack outward from the allocation past the
// runtime and the standard and x/sys packages to the first frame of gnet
// or of this module.
func AllocOwners(n int, fn, settle func()) map[string]map[string]int64 {
	before := ownedProfile()
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	for range n {
		fn()
	}
	settle()
	runtime.MemProfileRate = old
	after := ownedProfile()
	out := map[string]map[string]int64{}
	for k, m := range after {
		d := m - before[k]
		if d <= 0 {
			continue
		}
		owner, site, _ := strings.Cut(k, "|")
		if out[owner] == nil {
			out[owner] = map[string]int64{}
		}
		out[owner][site] += d
	}
	return out
}

// ownedProfile returns the objects allocated so far, keyed "owner|site".
func ownedProfile() map[string]int64 { return ProfileBy(OwnerOf) }

// ProfileBy returns the objects allocated so far, added up by key(stack)
// of their allocation.
func ProfileBy(key func([]uintptr) string) map[string]int64 {
	out := map[string]int64{}
	for _, r := range MemRecords(true) {
		out[key(r.Stack())] += r.AllocObjects
	}
	return out
}

// MemRecords returns the memory profile's records after two garbage
// collections (the profile lags up to two cycles): every allocating site
// with all, else only those whose objects are still in use.
func MemRecords(all bool) []runtime.MemProfileRecord {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, all)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, all); ok {
			return recs[:n]
		}
	}
}

// OwnerOf names the owner and the allocating site of a stack.
func OwnerOf(stack []uintptr) string {
	frames := runtime.CallersFrames(stack)
	site := ""
	for {
		fr, more := frames.Next()
		fn := fr.Function
		if site == "" && !strings.HasPrefix(fn, "runtime.") {
			site = fmt.Sprintf("%s (%s:%d)", fn, filepath.Base(fr.File), fr.Line)
		}
		switch {
		case strings.HasPrefix(fn, "github.com/panjf2000/gnet/"):
			return OwnerGnet + "|" + site
		case strings.HasPrefix(fn, "github.com/upgate/upgate/"):
			if strings.HasSuffix(fr.File, "_test.go") {
				return OwnerTest + "|" + site
			}
			return OwnerUpgate + "|" + site
		}
		if !more {
			return OwnerOther + "|" + site
		}
	}
}
