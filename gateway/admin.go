package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// AdminHandler returns the admin API as an http.Handler, the one the admin
// listener (Config.Admin) serves: a program with an HTTP server of its own
// may mount it there instead, under a prefix with http.StripPrefix, and
// set Config.Admin to "off". It has no authentication: keep it on loopback
// or a private network, or behind the program's own checks. Every call
// returns the same handler; it serves before Start and after Shutdown too
// (publishing then reaches no one). Answers are JSON, errors
// {"error": "..."} with a precise status:
//
//	GET    /metrics                 Prometheus exposition (text or protobuf, as
//	                                negotiated; gzip when accepted)
//	GET    /healthz, /readyz        as on the public listener
//	POST   /publish/{topic}         body = message; ?binary=1 sends binary
//	                                200 {"topic","delivered"}; 400 bad topic or
//	                                text that is not UTF-8; 413 over limits.max_message
//	GET    /connections             ?topic=&route=&after=&limit= (default 100, at
//	                                most 10000); 200 {"matched","connections":[...],
//	                                "next"}: the open connections that match, by
//	                                ascending id after ?after, "next" the ?after of
//	                                the next page when more matched; 400 bad query
//	GET    /connections/{id}        200 {"id","route","topic","subprotocol","client","remote"}
//	                                (with a bus also "conn", the fleet id, and "user")
//	POST   /connections/{id}/send   body = message; ?binary=1; 200 {"id","sent":1};
//	                                413 over the route's max_message
//	DELETE /connections/{id}        ?code=1000&reason=...; 200 {"id","closed":1}
//	GET    /tls                     200 {"listen","addr","certificates":[{"index","name",
//	                                "dns_names","cert","key","not_after",
//	                                "expires_in_seconds"}],"reloads","reload_failures",
//	                                "last_reload","last_error"}; 404 without a TLS listener
//
// Unknown ids are 404, malformed ids, codes and flags 400, and a connection
// already closing 410. A method a path does not serve is 405 with Allow, a
// method upgate does not know 501. With a bus (Config.NATS) an id may be a fleet id,
// "<node>.<id>": send and disconnect then reach a connection of any node
// (503 without the bus, 504 when its node does not answer), GET only this
// node's.
func (g *Gateway) AdminHandler() http.Handler { return g.adminMux }

// newAdminHandler builds the admin API's handler, once g's metrics exist.
func (g *Gateway) newAdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metricsHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, state := g.busReady()
		answer := map[string]string{"status": "ready"}
		if state != "" {
			answer["bus"] = state
			answer["node"] = g.NodeID()
		}
		switch {
		case g.draining.Load():
			answer["status"] = "draining"
		case !ok:
			answer["status"] = "bus " + state
		default:
			writeJSON(w, http.StatusOK, answer)
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, answer)
	})
	mux.HandleFunc("POST /publish/{topic}", g.servePublish)
	mux.HandleFunc("GET /connections", g.serveConnList)
	mux.HandleFunc("GET /connections/{id}", g.serveConnInfo)
	mux.HandleFunc("POST /connections/{id}/send", g.serveSend)
	mux.HandleFunc("DELETE /connections/{id}", g.serveDisconnect)
	mux.HandleFunc("GET /tls", g.serveTLSStatus)
	return knownMethods(mux)
}

// knownMethods answers 501 to a request whose method upgate does not know
// (RFC 9110 §9.1); h answers the others, 405 with Allow when the path does
// not serve the method.
func knownMethods(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !parser.KnownMethod([]byte(r.Method)) {
			writeError(w, http.StatusNotImplemented, "unknown request method")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// readMessage reads a message body of at most limit bytes and its opcode
// from ?binary. It answers the error itself and returns ok false.
func readMessage(w http.ResponseWriter, r *http.Request, limit int64) (OpCode, []byte, bool) {
	op := OpText
	switch r.URL.Query().Get("binary") {
	case "", "0", "false":
	case "1", "true":
		op = OpBinary
	default:
		writeError(w, http.StatusBadRequest, "binary: want 1, true, 0 or false")
		return 0, nil, false
	}
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "message over "+strconv.FormatInt(limit, 10)+" bytes")
		return 0, nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "message over "+strconv.FormatInt(limit, 10)+" bytes")
		} else {
			writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		}
		return 0, nil, false
	}
	if op == OpText && !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, "text message is not valid UTF-8 (use ?binary=1)")
		return 0, nil, false
	}
	return op, body, true
}

func (g *Gateway) servePublish(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if !validTopic([]byte(name)) {
		writeError(w, http.StatusBadRequest, "invalid topic")
		return
	}
	op, body, ok := readMessage(w, r, g.cfg.Limits.MaxMessage)
	if !ok {
		return
	}
	n, err := g.Publish(name, op, body)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "an event loop is behind: the message was not delivered; retry later")
		return
	}
	answer := map[string]any{"topic": name, "delivered": n}
	if g.bus != nil {
		answer["bus"] = g.bus.State().String()
	}
	writeJSON(w, http.StatusOK, answer)
}

// connOf resolves the {id} of the path, answering 400 or 404 itself. An id
// is this node's decimal id, or, with a bus, a fleet id "<node>.<id>":
// remote is then set when the node is another one (and c is nil).
func (g *Gateway) connOf(w http.ResponseWriter, r *http.Request) (c Conn, remote string) {
	s := r.PathValue("id")
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil && g.bus != nil {
		node, n, perr := bus.ParseFleetID(s)
		switch {
		case perr != nil:
		case node != g.bus.Node():
			return Conn{}, s
		default:
			id, err = n, nil
		}
	}
	if err != nil {
		msg := "connection id must be a decimal number"
		if g.bus != nil {
			msg = "connection id must be a decimal number or <node>.<number>"
		}
		writeError(w, http.StatusBadRequest, msg)
		return Conn{}, ""
	}
	c = g.conns.get(id)
	if c.IsZero() {
		writeError(w, http.StatusNotFound, "no open connection with id "+s)
	}
	return c, ""
}

// remoteTimeout bounds the wait for another node's answer to a send or a
// disconnect of the admin API.
const remoteTimeout = 5 * time.Second

// sendRemote sends to (closeCode 0) or disconnects a connection of another
// node over the bus and answers as for a local one.
func (g *Gateway) sendRemote(w http.ResponseWriter, r *http.Request, id string, op OpCode, body []byte, closeCode uint16) bool {
	ctx, cancel := context.WithTimeout(r.Context(), remoteTimeout)
	defer cancel()
	err := g.bus.SendWait(ctx, id, bus.OpCode(op), body, closeCode)
	switch {
	case err == nil:
		return true
	case errors.Is(err, bus.ErrUnknownConn):
		writeError(w, http.StatusNotFound, "no open connection with id "+id)
	case errors.Is(err, bus.ErrConnClosed), errors.Is(err, bus.ErrSlowConsumer):
		writeError(w, http.StatusGone, "connection is closing: "+err.Error())
	case errors.Is(err, bus.ErrNotConnected):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusGatewayTimeout, "no answer from the connection's node: "+err.Error())
	}
	return false
}

// sendError answers the error of a Send or Close on an open connection.
func sendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, ErrSlowConsumer):
		writeError(w, http.StatusGone, "connection is closing: "+err.Error())
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
}

// connInfo is a connection as the admin API shows it.
type connInfo struct {
	ID          uint64 `json:"id"`
	Conn        string `json:"conn,omitempty"` // fleet id, with a bus
	Route       string `json:"route"`
	Topic       string `json:"topic"`
	Subprotocol string `json:"subprotocol"`
	Client      string `json:"client"`
	Remote      string `json:"remote"`
	User        string `json:"user,omitempty"`
	// Protocol is what the connection switched to: "websocket", a
	// registered protocol's token, or "tcp" for a tcp tunnel.
	Protocol string `json:"protocol"`
	// BytesUp and BytesDown are a spliced tunnel's bytes so far, client
	// to upstream and back (websockify: payload bytes).
	BytesUp   *int64 `json:"bytes_up,omitempty"`
	BytesDown *int64 `json:"bytes_down,omitempty"`
}

func (g *Gateway) infoOf(c Conn) connInfo {
	remote := ""
	if a := c.RemoteAddr(); a != nil {
		remote = a.String()
	}
	fleet := ""
	if g.bus != nil {
		fleet = c.FleetID()
	}
	info := connInfo{
		ID:          c.ID(),
		Conn:        fleet,
		User:        c.User(),
		Route:       c.Route(),
		Topic:       c.Topic(),
		Subprotocol: c.Subprotocol(),
		Client:      c.ClientAddr().String(),
		Remote:      remote,
		Protocol:    c.Protocol(),
	}
	if t := c.tunnelOf(); t != nil {
		up, down := t.BytesAB(), t.BytesBA()
		info.BytesUp, info.BytesDown = &up, &down
	}
	return info
}

func (g *Gateway) serveConnInfo(w http.ResponseWriter, r *http.Request) {
	c, remote := g.connOf(w, r)
	if remote != "" {
		writeError(w, http.StatusNotFound, "connection "+remote+" is not on this node ("+g.bus.Node()+"): ask its node's admin API")
		return
	}
	if c.IsZero() {
		return
	}
	writeJSON(w, http.StatusOK, g.infoOf(c))
}

func (g *Gateway) serveSend(w http.ResponseWriter, r *http.Request) {
	c, remote := g.connOf(w, r)
	if remote != "" {
		op, body, ok := readMessage(w, r, g.cfg.Limits.MaxMessage)
		if ok && g.sendRemote(w, r, remote, op, body, 0) {
			writeJSON(w, http.StatusOK, map[string]any{"id": remote, "sent": 1})
		}
		return
	}
	if c.IsZero() {
		return
	}
	rt := c.routeOf()
	if rt == nil {
		writeError(w, http.StatusNotFound, "no open connection with id "+r.PathValue("id"))
		return
	}
	op, body, ok := readMessage(w, r, rt.maxMessage)
	if !ok {
		return
	}
	if err := c.Send(op, body); err != nil {
		sendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.ID(), "sent": 1})
}

func (g *Gateway) serveDisconnect(w http.ResponseWriter, r *http.Request) {
	c, remote := g.connOf(w, r)
	if c.IsZero() && remote == "" {
		return
	}
	q := r.URL.Query()
	code := StatusCode(1000)
	if s := q.Get("code"); s != "" {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || !frame.ValidCloseCode(ws.StatusCode(n)) {
			writeError(w, http.StatusBadRequest, "code: want a close code that may be sent (1000-1003, 1007-1014, 3000-4999)")
			return
		}
		code = StatusCode(n)
	}
	reason := q.Get("reason")
	if len(reason) > 123 || !utf8.ValidString(reason) {
		writeError(w, http.StatusBadRequest, "reason: want at most 123 bytes of UTF-8")
		return
	}
	if remote != "" {
		if g.sendRemote(w, r, remote, 0, []byte(reason), uint16(code)) {
			writeJSON(w, http.StatusOK, map[string]any{"id": remote, "closed": 1})
		}
		return
	}
	if err := c.Close(code, reason); err != nil {
		sendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.ID(), "closed": 1})
}
