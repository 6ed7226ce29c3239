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
func (s *Sim) authenticate(req *http.Request, rel string) (user, token, reason string) {
	if rel == "/access/ticket" && (req.Method == "GET" || req.Method == "POST") {
		return "", "", ""
	}
	if h := req.Header.Get("Authorization"); strings.HasPrefix(h, "PVEAPIToken=") {
		v := strings.TrimPrefix(h, "PVEAPIToken=")
		id, secret, ok := strings.Cut(v, "=")
		if !ok {
			// some clients separate the secret with ':'
			if i := strings.LastIndexByte(v, ':'); i > 0 {
				id, secret, ok = v[:i], v[i+1:], true
			}
		}
		if !ok || id != s.opts.TokenID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.TokenSecret)) != 1 {
			return "", "", reasonAuthFailed
		}
		u, t, _ := strings.Cut(id, "!")
		return u, t, ""
	}
	ticket := ""
	if c, err := req.Cookie("PVEAuthCookie"); err == nil {
		ticket = c.Value
	}
	if ticket == "" {
		return "", "", reasonNoTicket
	}
	u, ok := s.verifyTicket(ticket)
	if !ok {
		return "", "", reasonAuthFailed
	}
	if req.Method != "GET" && !s.verifyCSRF(u, req.Header.Get("CSRFPreventionToken")) {
		return "", "", reasonBadCSRF
	}
	return u, "", ""
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
