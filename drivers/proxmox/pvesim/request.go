package pvesim

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// reqCtx is what a handler sees: validated parameters (booleans as "1"/"0",
// everything else as sent) and the authenticated identity.
type reqCtx struct {
	ep     *Endpoint
	params map[string]string
	user   string // user@realm
	token  string // token name, "" for ticket sessions
	node   string // uri {node}, when present
	id     identity
}

// canAudit is the VM.Audit filter PVE applies to guest listings: entries
// the caller may not audit are silently left out.
func (r *reqCtx) canAudit() bool { return r.id.has("VM.Audit") }

func (r *reqCtx) has(k string) bool   { _, ok := r.params[k]; return ok }
func (r *reqCtx) str(k string) string { return r.params[k] }
func (r *reqCtx) flag(k string) bool  { return r.params[k] == "1" }
func (r *reqCtx) int(k string, def int) int {
	if v, ok := r.params[k]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// taskUser is the user recorded in UPIDs: the token id for tokens.
func (r *reqCtx) taskUser() string {
	if r.token != "" {
		return r.user + "!" + r.token
	}
	return r.user
}

type handlerFunc func(s *Sim, r *reqCtx) (any, error)

// secretParams are masked in the request log.
var secretParams = map[string]bool{"password": true, "cipassword": true, "token_value": true}

// handle runs the pipeline in pve-http-server's order: URI split, auth
// (401), body checks (501/506), route (501), fault injection, parameter
// verification (400), handler.
func (s *Sim) handle(req *http.Request) (resp response) {
	start := time.Now()
	rel := ""
	tmpl := ""
	var logged map[string]string
	defer func() {
		s.mu.Lock()
		s.reqlog = append(s.reqlog, Request{Time: start, Method: req.Method, Path: rel, Template: tmpl, Params: logged, Status: resp.status, Reason: resp.reason, Dropped: resp.drop})
		s.mu.Unlock()
		if s.opts.Logf != nil {
			s.opts.Logf("%s %s -> %d %s", req.Method, req.URL.Path, resp.status, resp.reason)
		}
	}()
	path := req.URL.EscapedPath()
	switch {
	case path == "/api2/json":
		rel = "/"
	case strings.HasPrefix(path, "/api2/json/"):
		rel = "/" + strings.Trim(strings.TrimPrefix(path, "/api2/json/"), "/")
	case path == "/pvesim" || len(path) > 8 && path[:8] == "/pvesim/":
		rel = path
		return s.control(req, rel)
	default:
		rel = path
		return errorResponse(errf(501, "no such uri"))
	}
	if req.Method != "GET" && req.Method != "POST" && req.Method != "PUT" && req.Method != "DELETE" {
		return errorResponse(errf(501, "method '%s' not available", req.Method))
	}
	if len(req.TransferEncoding) > 0 {
		return errorResponse(errf(501, "chunked transfer encoding not supported"))
	}

	id, aerr := s.authenticate(req, rel)
	if aerr != "" {
		return response{status: 401, reason: aerr, delay: s.opts.AuthFailureDelay}
	}

	if req.ContentLength > 0 && req.Method != "PUT" && req.Method != "POST" {
		return errorResponse(errf(501, "Unexpected content for method '%s'", req.Method))
	}

	segs := strings.Split(strings.Trim(rel, "/"), "/")
	for i, sg := range segs {
		if u, err := url.PathUnescape(sg); err == nil {
			segs[i] = u
		}
	}
	if u, err := url.PathUnescape(rel); err == nil {
		rel = u
	}
	var ep *Endpoint
	var uri map[string]string
	for _, e := range APISchema().Endpoints {
		if e.Method != req.Method {
			continue
		}
		if u, ok := e.match(segs); ok {
			ep, uri = e, u
			break
		}
	}
	if ep == nil {
		return errorResponse(errf(501, "Method '%s %s' not implemented", req.Method, rel))
	}
	tmpl = ep.Path

	if f := s.takeFault(req.Method, rel, tmpl); f != nil {
		if f.Latency > 0 {
			select {
			case <-time.After(f.Latency):
			case <-s.ctx.Done():
			}
		}
		if f.Drop {
			return response{drop: true}
		}
		if f.Status != 0 {
			return errorResponse(&apiError{status: f.Status, msg: f.Message, errors: f.Errors})
		}
	}

	raw, perr := readParams(req)
	if perr != nil {
		return errorResponse(perr)
	}
	logged = map[string]string{}
	for k, v := range raw {
		if secretParams[k] {
			logged[k] = "********"
		} else {
			logged[k] = v.s
		}
	}
	for k, v := range uri {
		if old, ok := raw[k]; ok && old.s != v {
			return errorResponse(errf(400, "duplicate parameter (already defined in URI) with conflicting values!"))
		}
		raw[k] = value{s: v}
	}
	if errs := ep.validate(raw); errs != nil {
		return errorResponse(&apiError{status: 400, msg: msgParamFailed, errors: errs})
	}
	rc := &reqCtx{ep: ep, params: map[string]string{}, user: id.user, token: id.token, node: uri["node"], id: id}
	for k, v := range raw {
		rc.params[k] = v.s
	}
	if perr := checkPerm(ep.Check, id, rc.params); perr != nil {
		return errorResponse(perr)
	}
	if perr := handlerPerm(ep, id, rc.params); perr != nil {
		return errorResponse(perr)
	}

	h := routes[ep.Method+" "+ep.Path]
	if h == nil {
		return errorResponse(errf(501, "Method '%s %s' not implemented", req.Method, rel))
	}
	s.mu.Lock()
	if id.token != "" && !ep.AllowToken {
		s.mu.Unlock()
		return errorResponse(errf(403, "Permission check failed (user != root@pam)"))
	}
	var data any
	var err error
	if ep.ProxyTo == "node" && s.findNode(rc.node) == nil {
		err = errf(500, "hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", rc.node, rc.node)
	} else {
		data, err = h(s, rc)
	}
	s.mu.Unlock()
	if err != nil {
		if ae, ok := err.(*apiError); ok {
			resp := errorResponse(ae)
			if ae.status == 401 {
				resp.delay = s.opts.AuthFailureDelay
			}
			return resp
		}
		return errorResponse(errf(500, "%v", err))
	}
	return dataResponse(data)
}

// readParams merges the query string over a form or JSON body, as
// pve-http-server does; other content types get 506.
func readParams(req *http.Request) (map[string]value, *apiError) {
	out := map[string]value{}
	if req.ContentLength > 0 {
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			return nil, errf(400, "unable to read request body: %v", err)
		}
		ctype := req.Header.Get("Content-Type")
		ct, _, _ := mime.ParseMediaType(ctype)
		switch ct {
		case "", "application/x-www-form-urlencoded":
			q, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, errf(400, "unable to parse form data: %v", err)
			}
			for k, vs := range q {
				out[k] = value{s: vs[0]}
			}
		case "application/json":
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				return nil, errf(400, "unable to parse JSON body: %v", err)
			}
			for k, v := range m {
				switch x := v.(type) {
				case nil:
				case bool:
					s := "0"
					if x {
						s = "1"
					}
					out[k] = value{s: s, isBool: true}
				case json.Number:
					out[k] = value{s: x.String()}
				case string:
					out[k] = value{s: x}
				case []any:
					out[k] = value{isRef: "ARRAY"}
				default:
					out[k] = value{isRef: "HASH"}
				}
			}
		default:
			return nil, errf(506, "upload 'Content-Type '%s' not implemented", ctype)
		}
	}
	for k, vs := range req.URL.Query() {
		out[k] = value{s: vs[0]}
	}
	return out, nil
}

func (s *Sim) findNode(name string) *node {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}
