package pvesim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Expected strings below are copied from the project's PVE reference data
// (SEMANTICS.md; sources: pve-http-server @ 5c9e4ea7, pve-common @ f665029e,
// qemu-server @ e6352be6, pve-container @ 94f55852, pve-manager @ 14a22df3).

func newSim(t *testing.T, opts Options) *Sim {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type apiResp struct {
	status int
	reason string
	raw    []byte
	body   map[string]json.RawMessage
}

func (r *apiResp) data(t *testing.T, v any) {
	t.Helper()
	// Decode into a zeroed value: json.Unmarshal merges into existing maps.
	rv := reflect.ValueOf(v).Elem()
	rv.Set(reflect.Zero(rv.Type()))
	if err := json.Unmarshal(r.body["data"], v); err != nil {
		t.Fatalf("decode data %s: %v", r.body["data"], err)
	}
}

func (r *apiResp) errors(t *testing.T) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(r.body["errors"], &m); err != nil {
		t.Fatalf("decode errors %s: %v", r.raw, err)
	}
	return m
}

// call sends a form-encoded request authenticated with the seeded token.
// GET/DELETE parameters go in the query string.
func call(t *testing.T, s *Sim, method, path string, params url.Values) *apiResp {
	t.Helper()
	var body io.Reader
	u := s.URL() + path
	if method == "GET" || method == "DELETE" {
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
	} else if params != nil {
		body = strings.NewReader(params.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Authorization", s.AuthHeader())
	return send(t, s, req)
}

func callJSON(t *testing.T, s *Sim, method, path string, params map[string]any) *apiResp {
	t.Helper()
	b, _ := json.Marshal(params)
	req, _ := http.NewRequest(method, s.URL()+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", s.AuthHeader())
	return send(t, s, req)
}

func send(t *testing.T, s *Sim, req *http.Request) *apiResp {
	t.Helper()
	res, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := &apiResp{status: res.StatusCode, reason: strings.TrimPrefix(res.Status, res.Status[:4]), raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", req.Method, req.URL.Path, raw)
		}
	}
	return r
}

// mustOK fails unless the call returned 200 and decodes data into v.
func mustOK(t *testing.T, r *apiResp, v any) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d %q, body %s", r.status, r.reason, r.raw)
	}
	if v != nil {
		r.data(t, v)
	}
}

func wantErr(t *testing.T, r *apiResp, status int, reason string) {
	t.Helper()
	if r.status != status || r.reason != reason {
		t.Fatalf("got %d %q (body %s), want %d %q", r.status, r.reason, r.raw, status, reason)
	}
}

// waitOK waits for a task and requires exitstatus OK.
func waitOK(t *testing.T, s *Sim, upid string) {
	t.Helper()
	exit, ok := s.WaitTask(upid, 10*time.Second)
	if !ok || exit != "OK" {
		t.Fatalf("task %s: exit %q (finished %v)", upid, exit, ok)
	}
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func newReq(method, u string, s *Sim) (*http.Request, error) {
	r, err := http.NewRequest(method, u, nil)
	if err == nil {
		r.Header.Set("Authorization", s.AuthHeader())
	}
	return r, err
}

// countsString renders request counts for failure messages.
func countsString(m map[string]int) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + " " + strconv.Itoa(v) + "\n")
	}
	return b.String()
}
