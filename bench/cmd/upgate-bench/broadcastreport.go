package main

import (
	"math"
	"slices"
	"strconv"
)

// broadcastFloor is the server whose CPU time per delivery is the floor of
// the broadcast scenario: one write(2) of one frame per subscriber.
const broadcastFloor = "writefloor"

// floorBroadcastTable is the broadcast table with the server's loops and,
// after the server's CPU time per delivery, its ratio to the floor's with
// as many loops.
func floorBroadcastTable(gs []*group) *table {
	t := broadcastTable(gs)
	at := slices.Index(t.head, "server CPU µs/delivery") + 1
	t.head = slices.Insert(t.head, at, "vs floor")
	t.head = slices.Insert(t.head, 1, "loops")
	for i, g := range gs {
		floor := findLoops(gs, broadcastFloor, g.loops)
		f := math.NaN() // no floor with as many loops: "–"
		if floor != nil {
			f = floor.med(srvPerOp)
		}
		t.rows[i] = slices.Insert(t.rows[i], at, ratio(g.med(srvPerOp), f))
		t.rows[i] = slices.Insert(t.rows[i], 1, strconv.Itoa(g.loops))
	}
	return t
}

// findLoops returns the group of server with loops loops, or nil.
func findLoops(gs []*group, server string, loops int) *group {
	for _, g := range gs {
		if g.server == server && g.loops == loops {
			return g
		}
	}
	return nil
}
