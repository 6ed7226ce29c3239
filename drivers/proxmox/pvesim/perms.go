package pvesim

import (
	"fmt"
	"strings"
)

// Token is an additional API token. Privs limits what it may do on every
// path (nil = everything, like the seeded root@pam!berth token); privilege
// separation beyond that is not modelled.
type Token struct {
	ID     string // user@realm!name
	Secret string
	Privs  []string
}

// AuditPrivs is a read-only privilege set (a PVEAuditor-like token).
var AuditPrivs = []string{"VM.Audit", "Sys.Audit", "Datastore.Audit", "VM.GuestAgent.Audit", "Pool.Audit"}

// identity is who a request runs as.
type identity struct {
	user  string
	token string
	privs map[string]bool // nil = all privileges
}

func (id identity) has(priv string) bool { return id.privs == nil || id.privs[priv] }

// permDenied is RPCEnvironment raise_perm_exc: 403 "Permission check
// failed (/vms/100, VM.PowerMgmt)".
func permDenied(what string) *apiError {
	if what == "" {
		return errf(403, "Permission check failed")
	}
	return errf(403, "Permission check failed (%s)", what)
}

// checkPerm evaluates a schema permission expression
// (["perm", path, privs, "any", 1], ["and", ...], ["or", ...]) for id with
// the request's parameters, as check_api2_permissions does.
func checkPerm(check []any, id identity, params map[string]string) *apiError {
	if len(check) == 0 || id.privs == nil {
		return nil
	}
	op, _ := check[0].(string)
	switch op {
	case "perm":
		tmpl, _ := check[1].(string)
		var privs []string
		if l, ok := check[2].([]any); ok {
			for _, p := range l {
				privs = append(privs, fmt.Sprint(p))
			}
		}
		anyOf := false
		for i := 3; i+1 < len(check); i += 2 {
			switch check[i] {
			case "any":
				anyOf = true
			case "require_param":
				if _, ok := params[fmt.Sprint(check[i+1])]; !ok {
					return permDenied("")
				}
			}
		}
		path := tmpl
		for k, v := range params {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		if anyOf {
			for _, p := range privs {
				if id.has(p) {
					return nil
				}
			}
			return permDenied(path + ", " + strings.Join(privs, "|"))
		}
		for _, p := range privs {
			if !id.has(p) {
				return permDenied(path + ", " + p)
			}
		}
		return nil
	case "and":
		for _, sub := range check[1:] {
			if l, ok := sub.([]any); ok {
				if err := checkPerm(l, id, params); err != nil {
					return err
				}
			}
		}
		return nil
	case "or":
		for _, sub := range check[1:] {
			if l, ok := sub.([]any); ok && checkPerm(l, id, params) == nil {
				return nil
			}
		}
		return permDenied("")
	}
	return nil
}

// handlerPerm covers the endpoints whose schema says "user: all" but whose
// handlers check privileges themselves (create needs VM.Allocate on the new
// id, volume deletion Datastore.Allocate).
func handlerPerm(ep *Endpoint, id identity, params map[string]string) *apiError {
	if id.privs == nil {
		return nil
	}
	switch ep.Method + " " + ep.Path {
	case "POST /nodes/{node}/lxc", "POST /nodes/{node}/qemu":
		return checkPerm([]any{"perm", "/vms/{vmid}", []any{"VM.Allocate"}}, id, params)
	case "DELETE /nodes/{node}/storage/{storage}/content/{volume}":
		return checkPerm([]any{"perm", "/storage/{storage}", []any{"Datastore.Allocate"}}, id, params)
	case "DELETE /nodes/{node}/tasks/{upid}":
		return checkPerm([]any{"perm", "/nodes/{node}", []any{"Sys.Modify"}}, id, params)
	}
	return nil
}
