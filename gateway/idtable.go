package gateway

import "math/bits"

// keyed is an entry of an idTable: a pointer that carries its own id.
type keyed interface {
	comparable
	tableID() uint64
}

// idTable is a set of entries found by their ids: an open-addressed hash
// table of the entries alone (linear probing, deletion by backward shift,
// no tombstones). A slot is one pointer: 11 to 21 bytes per entry, where a
// map[uint64]*T takes 24 to 42, and unlike a map it shrinks again when
// entries leave. Not safe for concurrent use; the zero value is empty.
//
// An entry's id is read through the entry (tableID) on every probe that
// meets it, so ids must never change while the entry is in the table.
type idTable[T keyed] struct {
	slots []T // len 0 or a power of two; at most 3/4 full, so a probe ends
	n     int
}

// idTableMin is the smallest number of slots of a table that has any.
const idTableMin = 8

// home returns the first slot a probe for id looks at: Fibonacci hashing,
// the top bits of id times 2^64/φ, which spreads consecutive ids.
func (t *idTable[T]) home(id uint64) uint64 {
	shift := bits.LeadingZeros64(uint64(len(t.slots)) - 1)
	return (id * 0x9e3779b97f4a7c15) >> shift
}

// get returns the entry with this id, or the zero T.
func (t *idTable[T]) get(id uint64) T {
	var zero T
	if t.n == 0 {
		return zero
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.home(id); ; i = (i + 1) & mask {
		e := t.slots[i]
		if e == zero || e.tableID() == id {
			return e
		}
	}
}

// put adds e, in place of the entry with the same id if there is one.
func (t *idTable[T]) put(e T) {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.resize(max(idTableMin, 2*len(t.slots)))
	}
	t.insert(e)
}

// insert adds e to a table with room for it.
func (t *idTable[T]) insert(e T) {
	var zero T
	id := e.tableID()
	mask := uint64(len(t.slots) - 1)
	for i := t.home(id); ; i = (i + 1) & mask {
		switch s := t.slots[i]; {
		case s == zero:
			t.slots[i] = e
			t.n++
			return
		case s.tableID() == id:
			t.slots[i] = e
			return
		}
	}
}

// remove takes e out and reports whether it was there. The entries after
// it in its run move back to where a probe for them meets them sooner.
func (t *idTable[T]) remove(e T) bool {
	var zero T
	if t.n == 0 || e == zero {
		return false
	}
	mask := uint64(len(t.slots) - 1)
	i := t.home(e.tableID())
	for t.slots[i] != e {
		if t.slots[i] == zero {
			return false
		}
		i = (i + 1) & mask
	}
	// Fill the hole at i with the next entry of the run whose probe
	// passes i (its home is not after i on the way to its slot j).
	for j := (i + 1) & mask; t.slots[j] != zero; j = (j + 1) & mask {
		if (j-t.home(t.slots[j].tableID()))&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = zero
	t.n--
	if len(t.slots) > idTableMin && 16*t.n < 3*len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
	return true
}

// resize moves the entries to a table of n slots, a power of two.
func (t *idTable[T]) resize(n int) {
	var zero T
	old := t.slots
	t.slots, t.n = make([]T, n), 0
	for _, e := range old {
		if e != zero {
			t.insert(e)
		}
	}
}

// each calls fn for every entry, in no particular order, until fn returns
// false; it reports whether fn always returned true. fn must not change
// the table.
func (t *idTable[T]) each(fn func(T) bool) bool {
	var zero T
	for _, e := range t.slots {
		if e != zero && !fn(e) {
			return false
		}
	}
	return true
}
