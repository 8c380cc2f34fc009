package parser

// ListIter walks the elements of a comma-separated list field
// (RFC 9110 §5.6.1) over every field line that carries it, in order:
// "Connection: keep-alive" followed by "Connection: Upgrade" is the list
// "keep-alive, Upgrade". Empty elements are skipped and optional whitespace
// around elements is removed. Commas inside quoted strings are not special:
// use it for lists of tokens.
//
// A ListIter is a value; it allocates nothing. Its elements are views with
// the lifetime of the Request's accessors.
type ListIter struct {
	r     *Request
	id    FieldID
	next  int    // index of the next field line to look at
	rest  []byte // unread part of the current line
	elem  []byte
	lines bool // rest belongs to a line of the list
}

// List returns an iterator over the list elements of the fields with id.
func (r *Request) List(id FieldID) ListIter {
	it := ListIter{r: r, id: id}
	if f := r.first[id]; f != 0 {
		it.next = int(f) - 1
	} else {
		it.next = len(r.fields)
	}
	return it
}

// Next advances to the next element and reports whether there is one.
func (it *ListIter) Next() bool {
	for {
		for len(it.rest) > 0 {
			i := 0
			for i < len(it.rest) && it.rest[i] != ',' {
				i++
			}
			elem := trimOWS(it.rest[:i])
			if i < len(it.rest) {
				i++
			}
			it.rest = it.rest[i:]
			if len(elem) > 0 {
				it.elem = elem
				return true
			}
		}
		if !it.nextLine() {
			it.elem = nil
			return false
		}
	}
}

// nextLine loads the next field line with the iterator's id.
func (it *ListIter) nextLine() bool {
	fields := it.r.fields
	for it.next < len(fields) {
		f := &fields[it.next]
		it.next++
		if f.id == it.id {
			it.rest = it.r.valueView(f.value)
			return true
		}
	}
	return false
}

// Elem returns the current element.
func (it *ListIter) Elem() []byte { return it.elem }

// splitProtocol splits an Upgrade list element, protocol-name
// ["/" protocol-version] (RFC 9110 §7.8), into its parts. ok is false when
// either part is not a token.
func splitProtocol(elem []byte) (name, version []byte, ok bool) {
	for i, c := range elem {
		if c == '/' {
			name, version = elem[:i], elem[i+1:]
			return name, version, isToken(name) && isToken(version)
		}
	}
	return elem, nil, isToken(elem)
}
