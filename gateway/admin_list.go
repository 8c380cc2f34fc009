package gateway

import (
	"container/heap"
	"net/http"
	"slices"
	"strconv"
)

// Bounds of GET /connections.
const (
	defaultListLimit = 100
	maxListLimit     = 10000
)

// connList is the answer of GET /connections: how many open connections
// matched (with an id above ?after), the first ?limit of them by id, and
// the ?after of the next page when there are more.
type connList struct {
	Matched     int        `json:"matched"`
	Connections []connInfo `json:"connections"`
	Next        *uint64    `json:"next,omitempty"`
}

// serveConnList lists open connections, filtered by topic and route, the
// smallest ids after ?after first, at most ?limit of them. It walks the
// topic's subscribers when a topic is given, else the whole registry,
// keeping only the limit smallest ids (a bounded heap): the answer's size
// is bounded whatever the number of connections.
func (g *Gateway) serveConnList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			writeError(w, http.StatusBadRequest, "limit: want a whole number from 1 to "+strconv.Itoa(maxListLimit))
			return
		}
		limit = n
	}
	var after uint64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "after: want a connection id")
			return
		}
		after = n
	}
	var rt *route
	if s := q.Get("route"); s != "" {
		for _, x := range g.routes.all {
			if x.Path == s {
				rt = x
			}
		}
		if rt == nil {
			writeError(w, http.StatusBadRequest, "route: no configured route has the path "+strconv.Quote(s))
			return
		}
	}
	topicName, byTopic := q.Get("topic"), q.Has("topic")
	if byTopic && !validTopic([]byte(topicName)) {
		writeError(w, http.StatusBadRequest, "invalid topic")
		return
	}

	top := &idHeap{}
	matched := 0
	visit := func(c Conn) bool {
		if c.ID() <= after || (rt != nil && c.routeOf() != rt) || c.Closed() {
			return true
		}
		matched++
		switch {
		case top.Len() < limit:
			heap.Push(top, c)
		case c.ID() < (*top)[0].ID():
			(*top)[0] = c
			heap.Fix(top, 0)
		}
		return true
	}
	if byTopic {
		// A topic's subscriber lists belong to their loops: the
		// registry, walked whole, is what another goroutine may read.
		if g.topics.lookup(topicName) != nil {
			g.conns.each(func(c Conn) bool {
				if c.memberOf(topicName) {
					return visit(c)
				}
				return true
			})
		}
	} else {
		g.conns.each(visit)
	}

	found := []Conn(*top)
	slices.SortFunc(found, func(a, b Conn) int {
		switch {
		case a.ID() < b.ID():
			return -1
		case a.ID() > b.ID():
			return 1
		}
		return 0
	})
	ans := connList{Matched: matched, Connections: make([]connInfo, 0, len(found))}
	for _, c := range found {
		ans.Connections = append(ans.Connections, g.infoOf(c))
	}
	if matched > len(found) {
		next := found[len(found)-1].ID()
		ans.Next = &next
	}
	writeJSON(w, http.StatusOK, ans)
}

// idHeap is a max-heap of connections by id: its top is the largest id
// kept, the first to give way to a smaller one.
type idHeap []Conn

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i].ID() > h[j].ID() }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(Conn)) }
func (h *idHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
