package pvesim

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestWireFormat(t *testing.T) {
	s := newSim(t, Options{})
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
		empty  bool
	}{
		{"no credentials", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL()+"/version", nil)
			return r
		}, 401, "No ticket", true},
		{"wrong token secret", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL()+"/version", nil)
			r.Header.Set("Authorization", "PVEAPIToken="+s.TokenID()+"=wrong")
			return r
		}, 401, "Authentication failed!", true},
		{"unknown route", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL()+"/foo/bar", nil)
			r.Header.Set("Authorization", s.AuthHeader())
			return r
		}, 501, "Method 'GET /foo/bar' not implemented", false},
		{"body on DELETE", func() *http.Request {
			r, _ := http.NewRequest("DELETE", s.URL()+"/nodes/pve/lxc/100", strings.NewReader("force=1"))
			r.Header.Set("Authorization", s.AuthHeader())
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 501, "Unexpected content for method 'DELETE'", false},
		{"unsupported content type", func() *http.Request {
			r, _ := http.NewRequest("POST", s.URL()+"/nodes/pve/lxc", strings.NewReader("x"))
			r.Header.Set("Authorization", s.AuthHeader())
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 506, "upload 'Content-Type 'text/plain' not implemented", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := send(t, s, c.req())
			wantErr(t, r, c.status, c.reason)
			if c.empty && len(r.raw) != 0 {
				t.Fatalf("401 body must be empty, got %q", r.raw)
			}
			if !c.empty && string(r.body["data"]) != "null" {
				t.Fatalf("error body must carry data:null, got %s", r.raw)
			}
		})
	}

	var v map[string]string
	mustOK(t, call(t, s, "GET", "/version", nil), &v)
	if v["release"] != "9.1" {
		t.Fatalf("version %v", v)
	}
}

func TestParameterVerification(t *testing.T) {
	s := newSim(t, Options{})
	cases := []struct {
		name   string
		path   string
		params map[string]string
		json   map[string]any
		errs   map[string]string
	}{
		{"vmid format", "/nodes/pve/lxc", map[string]string{"vmid": "99", "ostemplate": "x"},
			nil, map[string]string{"vmid": "invalid format - value does not look like a valid VM ID\n"}},
		{"integer type", "/nodes/pve/lxc", map[string]string{"vmid": "abc", "ostemplate": "x"},
			nil, map[string]string{"vmid": "type check ('integer') failed - got 'abc'"}},
		{"boolean true rejected", "/nodes/pve/lxc", map[string]string{"vmid": "100", "ostemplate": "x", "start": "true"},
			nil, map[string]string{"start": "type check ('boolean') failed - got 'true'"}},
		{"unknown param and missing", "/nodes/pve/lxc", map[string]string{"vmid": "100", "bogus": "1"},
			nil, map[string]string{
				"bogus":      "property is not defined in schema and the schema does not allow additional properties",
				"ostemplate": "property is missing and it is not optional",
			}},
		{"minimum", "/nodes/pve/lxc", map[string]string{"vmid": "100", "ostemplate": "x", "memory": "8"},
			nil, map[string]string{"memory": "value must have a minimum value of 16"}},
		{"enum", "/nodes/pve/lxc", map[string]string{"vmid": "100", "ostemplate": "x", "arch": "sparc"},
			nil, map[string]string{"arch": "value 'sparc' does not have a value in the enumeration 'amd64, i386, arm64, armhf, riscv32, riscv64'"}},
		{"tag format", "/nodes/pve/lxc", map[string]string{"vmid": "100", "ostemplate": "x", "tags": "ok;bad tag!"},
			nil, map[string]string{"tags": "invalid format - invalid characters in tag\n"}},
		{"json bool on string", "/nodes/pve/lxc", nil,
			map[string]any{"vmid": 100, "ostemplate": "x", "hostname": true},
			map[string]string{"hostname": "type check ('string') failed - got JSON::PP::Boolean"}},
		{"property string key", "/nodes/pve/lxc", map[string]string{"vmid": "100", "ostemplate": "x", "net0": "name=eth0,bogus=1"},
			nil, map[string]string{"net0": "invalid format - invalid key in comma-separated list property: bogus\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r *apiResp
			if c.json != nil {
				r = callJSON(t, s, "POST", c.path, c.json)
			} else {
				r = call(t, s, "POST", c.path, form(flat(c.params)...))
			}
			wantErr(t, r, 400, "Parameter verification failed.")
			var msg string
			if err := jsonUnmarshal(r.body["message"], &msg); err != nil || msg != "Parameter verification failed.\n" {
				t.Fatalf("message = %q", r.body["message"])
			}
			got := r.errors(t)
			if len(got) != len(c.errs) {
				t.Fatalf("errors = %#v, want %#v", got, c.errs)
			}
			for k, v := range c.errs {
				if got[k] != v {
					t.Fatalf("errors[%s] = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func flat(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func TestCertificateFingerprint(t *testing.T) {
	s := newSim(t, Options{})
	block, _ := pem.Decode(s.CertPEM())
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	if got := colonHex(sum[:]); got != s.Fingerprint() {
		t.Fatalf("fingerprint %s, want %s", s.Fingerprint(), got)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(s.Fingerprint()) {
		t.Fatalf("fingerprint format %q", s.Fingerprint())
	}
	// An unpinned client must refuse the self-signed certificate.
	if _, err := http.Get(s.URL() + "/version"); err == nil {
		t.Fatal("default client accepted the self-signed certificate")
	}
}

func TestTicketLoginAndCSRF(t *testing.T) {
	s := newSim(t, Options{})
	r := call(t, s, "POST", "/access/ticket", form("username", "root@pam", "password", "wrong"))
	wantErr(t, r, 401, "authentication failure")

	var tk struct {
		Ticket string `json:"ticket"`
		CSRF   string `json:"CSRFPreventionToken"`
		User   string `json:"username"`
	}
	mustOK(t, call(t, s, "POST", "/access/ticket", form("username", "root", "realm", "pam", "password", s.Password())), &tk)
	if tk.User != "root@pam" || !strings.HasPrefix(tk.Ticket, "PVE:root@pam:") {
		t.Fatalf("ticket %+v", tk)
	}
	do := func(method, path, csrf string) *apiResp {
		req, _ := http.NewRequest(method, s.URL()+path, nil)
		req.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: tk.Ticket})
		if csrf != "" {
			req.Header.Set("CSRFPreventionToken", csrf)
		}
		return send(t, s, req)
	}
	mustOK(t, do("GET", "/nodes", ""), nil)
	wantErr(t, do("POST", "/nodes/pve/qemu/9000/template", ""), 401, "Permission denied - invalid csrf token")
	wantErr(t, do("POST", "/nodes/pve/qemu/9000/template", "00000000:bogus"), 401, "Permission denied - invalid csrf token")
}

func TestNextID(t *testing.T) {
	s := newSim(t, Options{})
	r := call(t, s, "GET", "/cluster/nextid", nil)
	mustOK(t, r, nil)
	if string(r.body["data"]) != `"100"` {
		t.Fatalf("nextid data = %s, want the string \"100\"", r.body["data"])
	}
	r = call(t, s, "GET", "/cluster/nextid", form("vmid", "9000"))
	wantErr(t, r, 400, "Parameter verification failed.")
	if e := r.errors(t); e["vmid"] != "VM 9000 already exists" {
		t.Fatalf("errors %v", e)
	}
	// nextid reserves nothing: asking twice gives the same id.
	r2 := call(t, s, "GET", "/cluster/nextid", nil)
	if string(r2.body["data"]) != `"100"` {
		t.Fatalf("second nextid %s", r2.body["data"])
	}
}

func TestEveryEndpointRouted(t *testing.T) {
	sch := APISchema()
	if len(sch.Endpoints) != 58 {
		t.Fatalf("schema has %d endpoints, want the 58 of the API subset", len(sch.Endpoints))
	}
	for _, ep := range sch.Endpoints {
		if routes[ep.Method+" "+ep.Path] == nil {
			t.Errorf("no handler for %s %s", ep.Method, ep.Path)
		}
	}
	if sch.Source["repo_head_commit"] != "e5010dcea566a205770572cfbc5fe0af220d5077" {
		t.Errorf("schema source %v", sch.Source)
	}
}

func TestNamedFormats(t *testing.T) {
	cases := []struct{ format, value, err string }{
		{"pve-vmid", "100", ""},
		{"pve-vmid", "0100", "value does not look like a valid VM ID"},
		{"pve-node", "pve-1", ""},
		{"pve-node", "pve_1", "value does not look like a valid node name"},
		{"pve-tag-list", "a;b,c d", ""},
		{"pve-tag-list", "ok;-bad", "invalid characters in tag"},
		{"urlencoded", "ssh-ed25519%20AAAA", ""},
		{"urlencoded", "ssh-ed25519 AAAA", "invalid urlencoded string: ssh-ed25519 AAAA"},
		{"pve-configid-list", "memory,net0", ""},
		{"pve-configid-list", "memory,0net", "invalid configuration ID '0net'"},
		{"pve-storage-id", "local-lvm", ""},
		{"pve-storage-id", "x", "storage ID 'x' contains illegal characters"},
		{"mac-addr", "BC:24:11:00:00:01", ""},
		{"mac-addr", "01:24:11:00:00:01", "value does not look like a valid unicast MAC address"},
		{"dns-name", "web.example", ""},
		{"dns-name", "-web", "value does not look like a valid DNS name"},
		{"pve-startup-order", "order=1,up=30", ""},
		{"pve-startup-order", "2", ""},
		{"pve-startup-order", "first=1", "invalid key in comma-separated list property: first"},
		{"pve-hotplug-features", "network,disk,memory", ""},
		{"pve-hotplug-features", "network,gpu", "invalid hotplug feature 'gpu'"},
		{"pve-qm-boot", "order=scsi0;ide2;net0", ""},
		{"pve-qm-ipconfig", "ip=dhcp,ip6=auto", ""},
		{"pve-qm-ipconfig", "ip=10.0.0.1", "format error\nipconfig.ip: invalid format - value does not look like a valid IPv4 network configuration"},
	}
	for _, c := range cases {
		if got := checkFormat(c.format, c.value); got != c.err {
			t.Errorf("%s %q: got %q, want %q", c.format, c.value, got, c.err)
		}
	}
}
