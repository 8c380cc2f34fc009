package gateway

import (
	"net/http"
	"strings"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/parser"
)

// Authorisation at connect over the bus (Route.Auth): the handshake waits,
// off the event loop, for the answer of the authorisation service on
// <prefix>.auth.

// authRequest copies what the authorisation service is told of a
// handshake: it runs in OnRequest, while the head's views are valid.
func (g *Gateway) authRequest(lc loop.Conn, h *parser.Request, c *connState) *bus.AuthRequest {
	req := &bus.AuthRequest{
		Conn:        g.bus.Subjects().FleetID(lc.ID()),
		Node:        g.bus.Node(),
		Route:       c.route().Path,
		Path:        string(h.Path()),
		Query:       string(h.Query()),
		Topic:       c.topic(),
		Remote:      remoteString(lc, c.handle().ClientAddr()),
		Subprotocol: c.handle().Subprotocol(),
	}
	for i := 0; i < h.NumFields(); i++ {
		name, value := h.Field(i)
		for _, want := range g.authHeaders {
			if len(name) == len(want) && strings.EqualFold(string(name), want) {
				if req.Headers == nil {
					req.Headers = map[string][]string{}
				}
				key := http.CanonicalHeaderKey(string(name))
				req.Headers[key] = append(req.Headers[key], string(value))
				break
			}
		}
	}
	return req
}

// deferAuth puts the handshake of c, with its permessage-deflate
// agreement pmd, off until the authorisation service on the bus answers
// (or the wait ends): the event loop goes on meanwhile. The connection slot
// c holds is released when the answer refuses it or the connection went
// away.
func (g *Gateway) deferAuth(r *loop.Request, d *loop.Decision, c *connState, pmd deflate.Params) {
	lc := r.Conn
	req := g.authRequest(lc, r.Head, c)
	d.Defer()
	g.bus.Authorize(req, func(res bus.AuthResult) {
		lc.Resolve(func(d *loop.Decision, ok bool) {
			if !ok {
				g.releaseSlot()
				return
			}
			g.authorized(lc, d, c, res, pmd)
		})
	})
}

// authorized completes a deferred handshake with the service's answer, on
// the connection's loop.
func (g *Gateway) authorized(lc loop.Conn, d *loop.Decision, c *connState, res bus.AuthResult, pmd deflate.Params) {
	rt := c.route()
	if !res.Allowed() {
		g.releaseSlot()
		header := ""
		if res.Status == 503 {
			header = retryAfterHeaders[retryAfterFull]
		}
		g.refuse(rt, d, rejAuthorize, res.Status, res.Reason, header)
		return
	}
	for _, t := range res.Topics {
		if !validTopic([]byte(t)) {
			g.releaseSlot()
			g.refuse(rt, d, rejAuthorize, 502, reasonBadTopics, "")
			return
		}
	}
	if res.User != "" || len(res.Topics) > 0 {
		x := c.extra()
		x.user, x.joins = res.User, res.Topics
	}
	lc.SetContext(c)
	var sub []byte
	if c.subIndex() != 0 {
		sub = []byte(c.handle().Subprotocol())
	}
	upgrade(d, c, sub, pmd)
}

// User returns the user id the authorisation service gave the connection,
// or "". Any goroutine once the connection is open.
func (c Conn) User() string {
	if c.s != nil {
		if x := c.s.extraOf(c.ID()); x != nil {
			return x.user
		}
	}
	return ""
}
