package main

import (
	"math"
	"slices"
	"strconv"
	"strings"
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

// publishers names where the broadcast runs of gs published: the one
// place, or each with its servers ("/ws/bench (upgate), /pub/bench
// (writefloor)").
func publishers(gs []*group) string {
	var pubs []string
	servers := map[string][]string{}
	for _, g := range gs {
		for _, r := range g.runs {
			p := r.Settings.Publish
			if !slices.Contains(pubs, p) {
				pubs = append(pubs, p)
			}
			if !slices.Contains(servers[p], g.server) {
				servers[p] = append(servers[p], g.server)
			}
		}
	}
	if len(pubs) == 1 {
		return pubs[0]
	}
	for i, p := range pubs {
		pubs[i] = p + " (" + strings.Join(servers[p], ", ") + ")"
	}
	return strings.Join(pubs, ", ")
}
