package gateway

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// entry is an idTable entry for the tests.
type entry struct {
	id uint64
	_  [64]byte // about a Conn
}

func (e *entry) tableID() uint64 { return e.id }

// TestIDTable checks an idTable against a map through random adds and
// removes, with ids as the registry's shards see them: rising, with gaps,
// all of one residue modulo regShards.
func TestIDTable(t *testing.T) {
	for i, stride := range []uint64{1, regShards, 3 * regShards} {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		var tb idTable[*entry]
		model := map[uint64]*entry{}
		var live []*entry
		next := uint64(5)
		for step := range 60000 {
			// Grow to about 3000 entries, then shrink to none.
			grow := step < 30000 && (len(live) == 0 || rng.IntN(100) < 55)
			switch {
			case grow:
				next += stride * uint64(1+rng.IntN(3))
				e := &entry{id: next}
				tb.put(e)
				model[e.id] = e
				live = append(live, e)
			case len(live) > 0:
				j := rng.IntN(len(live))
				e := live[j]
				if !tb.remove(e) {
					t.Fatalf("#%d: step %d: remove %d: got false; want true", i, step, e.id)
				}
				if tb.remove(e) {
					t.Fatalf("#%d: step %d: second remove %d: got true; want false", i, step, e.id)
				}
				delete(model, e.id)
				live[j] = live[len(live)-1]
				live = live[:len(live)-1]
			}
			if tb.n != len(model) {
				t.Fatalf("#%d: step %d: got n %d; want %d", i, step, tb.n, len(model))
			}
			if step%500 != 0 {
				continue
			}
			for id, e := range model {
				if got := tb.get(id); got != e {
					t.Fatalf("#%d: step %d: get %d: got %p; want %p", i, step, id, got, e)
				}
				if got := tb.get(id + 1); got != nil && got.id != id+1 {
					t.Fatalf("#%d: step %d: get %d: got entry %d; want it or none", i, step, id+1, got.id)
				}
			}
			seen := 0
			tb.each(func(e *entry) bool {
				if model[e.id] != e {
					t.Fatalf("#%d: step %d: each: got entry %d not in the model", i, step, e.id)
				}
				seen++
				return true
			})
			if seen != len(model) {
				t.Fatalf("#%d: step %d: each: got %d entries; want %d", i, step, seen, len(model))
			}
			if len(tb.slots) > idTableMin && 16*tb.n < 3*len(tb.slots) {
				t.Fatalf("#%d: step %d: got %d slots for %d entries; want it shrunk", i, step, len(tb.slots), tb.n)
			}
		}
		if len(tb.slots) != idTableMin || tb.get(next) != nil {
			t.Fatalf("#%d: emptied: got %d slots; want %d and no entry", i, len(tb.slots), idTableMin)
		}
	}
}

// TestIDTableReplace: an entry of an id already there takes its place.
func TestIDTableReplace(t *testing.T) {
	var tb idTable[*entry]
	a, b := &entry{id: 9}, &entry{id: 9}
	tb.put(a)
	tb.put(b)
	if tb.n != 1 || tb.get(9) != b || tb.remove(a) || !tb.remove(b) || tb.n != 0 {
		t.Fatalf("got n %d, get %p; want the second entry alone, %p", tb.n, tb.get(9), b)
	}
}

// TestRegistryMemory logs the heap the registry's index takes per entry,
// beside a map per shard as it was before, and fails if it is not
// smaller. Each figure is the median of three builds, as memory freed by
// other goroutines meanwhile can lower one.
func TestRegistryMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	for i, n := range []int{2000, 20000} {
		es := make([]*entry, n)
		for j := range es {
			es[j] = &entry{id: uint64(j + 1)}
		}
		table := heldPerEntry(n, func() any {
			tables := new([regShards]idTable[*entry])
			for _, e := range es {
				tables[e.id%regShards].put(e)
			}
			return tables
		})
		maps := heldPerEntry(n, func() any {
			maps := new([regShards]map[uint64]*entry)
			for j := range maps {
				maps[j] = make(map[uint64]*entry)
			}
			for _, e := range es {
				maps[e.id%regShards][e.id] = e
			}
			return maps
		})
		t.Logf("%d entries over %d shards: %.1f bytes per entry (maps: %.1f)", n, regShards, table, maps)
		if table >= maps {
			t.Errorf("#%d: got %.1f bytes per entry; want less than the maps' %.1f", i, table, maps)
		}
	}
}

// heldPerEntry returns the heap that what build returns holds, per entry
// of n: the median of three builds.
func heldPerEntry(n int, build func() any) float64 {
	var got [3]float64
	for i := range got {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		v := build()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		runtime.KeepAlive(v)
		got[i] = float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(n)
	}
	slices.Sort(got[:])
	return got[1]
}

// BenchmarkRegistryGet looks connections up by id in 20 000 entries over
// the shards, against a map per shard.
func BenchmarkRegistryGet(b *testing.B) {
	const n = 20000
	es := make([]*entry, n)
	for j := range es {
		es[j] = &entry{id: uint64(3*j + 1)}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(n, func(i, j int) { es[i], es[j] = es[j], es[i] })
	var tables [regShards]idTable[*entry]
	var maps [regShards]map[uint64]*entry
	for j := range maps {
		maps[j] = make(map[uint64]*entry)
	}
	for _, e := range es {
		tables[e.id%regShards].put(e)
		maps[e.id%regShards][e.id] = e
	}
	b.Run("idTable", func(b *testing.B) {
		i := 0
		for b.Loop() {
			id := es[i%n].id
			if tables[id%regShards].get(id) == nil {
				b.Fatal("missing")
			}
			i++
		}
	})
	b.Run("map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			id := es[i%n].id
			if maps[id%regShards][id] == nil {
				b.Fatal("missing")
			}
			i++
		}
	})
}
