package pvesim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// 401 reason phrases of pve-http-server AnyEvent.pm / PVE::HTTPServer
// (SEMANTICS.md, project reference data @ pve-http-server 5c9e4ea7).
const (
	reasonNoTicket   = "No ticket"
	reasonAuthFailed = "Authentication failed!"
	reasonBadCSRF    = "Permission denied - invalid csrf token"
	ticketLifetime   = 2 * time.Hour
)

// authenticate returns the user and token name, or a 401 reason phrase.
// GET/POST /access/ticket need no authentication.
func (s *Sim) authenticate(req *http.Request, rel string) (id identity, reason string) {
	if rel == "/access/ticket" && (req.Method == "GET" || req.Method == "POST") {
		return identity{}, ""
	}
	if h := req.Header.Get("Authorization"); strings.HasPrefix(h, "PVEAPIToken=") {
		v := strings.TrimPrefix(h, "PVEAPIToken=")
		tid, secret, ok := strings.Cut(v, "=")
		if !ok {
			// some clients separate the secret with ':'
			if i := strings.LastIndexByte(v, ':'); i > 0 {
				tid, secret, ok = v[:i], v[i+1:], true
			}
		}
		tok := s.lookupToken(tid)
		if !ok || tok == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(tok.Secret)) != 1 {
			return identity{}, reasonAuthFailed
		}
		u, t, _ := strings.Cut(tid, "!")
		out := identity{user: u, token: t}
		if tok.Privs != nil {
			out.privs = map[string]bool{}
			for _, p := range tok.Privs {
				out.privs[p] = true
			}
		}
		return out, ""
	}
	ticket := ""
	if c, err := req.Cookie("PVEAuthCookie"); err == nil {
		ticket = c.Value
	}
	if ticket == "" {
		return identity{}, reasonNoTicket
	}
	u, ok := s.verifyTicket(ticket)
	if !ok {
		return identity{}, reasonAuthFailed
	}
	if req.Method != "GET" && !s.verifyCSRF(u, req.Header.Get("CSRFPreventionToken")) {
		return identity{}, reasonBadCSRF
	}
	return identity{user: u}, ""
}

func (s *Sim) lookupToken(id string) *Token {
	if id == s.opts.TokenID {
		return &Token{ID: id, Secret: s.opts.TokenSecret}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.tokens {
		if s.tokens[i].ID == id {
			return &s.tokens[i]
		}
	}
	return nil
}

// AddToken registers another API token (e.g. a read-only one with
// AuditPrivs for permission-failure tests).
func (s *Sim) AddToken(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, t)
}

func (s *Sim) sign(data string) string {
	m := hmac.New(sha256.New, s.ticketKey)
	m.Write([]byte(data))
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// newTicket mimics PVE's "PVE:user@realm:HEXTIME::signature" tickets.
func (s *Sim) newTicket(user string) (ticket, csrf string) {
	ts := fmt.Sprintf("%08X", time.Now().Unix())
	plain := "PVE:" + user + ":" + ts
	ticket = plain + "::" + s.sign(plain)
	csrf = ts + ":" + s.sign("csrf:"+ts+":"+user)
	return ticket, csrf
}

func (s *Sim) verifyTicket(t string) (string, bool) {
	plain, sig, ok := strings.Cut(t, "::")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.sign(plain))) {
		return "", false
	}
	parts := strings.Split(plain, ":")
	if len(parts) != 3 || parts[0] != "PVE" {
		return "", false
	}
	ts, err := strconv.ParseInt(parts[2], 16, 64)
	if err != nil || time.Since(time.Unix(ts, 0)) > ticketLifetime {
		return "", false
	}
	return parts[1], true
}

func (s *Sim) verifyCSRF(user, tok string) bool {
	ts, sig, ok := strings.Cut(tok, ":")
	return ok && hmac.Equal([]byte(sig), []byte(s.sign("csrf:"+ts+":"+user)))
}

// POST /access/ticket: password login for root@pam (realm may be given
// separately or as part of the username).
func hCreateTicket(s *Sim, r *reqCtx) (any, error) {
	user := r.str("username")
	if realm := r.str("realm"); realm != "" && !strings.Contains(user, "@") {
		user += "@" + realm
	}
	if !strings.Contains(user, "@") {
		user += "@pam"
	}
	pw := r.str("password")
	if strings.HasPrefix(pw, "PVE:") { // ticket renewal
		if u, ok := s.verifyTicket(pw); ok && u == user {
			return s.ticketData(user), nil
		}
		return nil, errf(401, "authentication failure")
	}
	if user != "root@pam" || subtle.ConstantTimeCompare([]byte(pw), []byte(s.opts.Password)) != 1 {
		return nil, errf(401, "authentication failure")
	}
	return s.ticketData(user), nil
}

func (s *Sim) ticketData(user string) map[string]any {
	t, c := s.newTicket(user)
	return map[string]any{"username": user, "ticket": t, "CSRFPreventionToken": c, "clustername": "berth-sim"}
}

// GET /access/ticket: a dummy used by the GUI to check login; returns null.
func hGetTicket(s *Sim, r *reqCtx) (any, error) { return nil, nil }
