package pvesim

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// BenchmarkGuestLifecycle runs create/start/stop/delete of a container per
// iteration over one keep-alive client, and reports how much a fresh TLS
// connection per request costs relative to keep-alive (ratio), a hint for
// driver authors to reuse their HTTP client.
func BenchmarkGuestLifecycle(b *testing.B) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	client := s.HTTPClient()
	do := func(c *http.Client, method, path string) {
		req, _ := http.NewRequest(method, s.URL()+path, nil)
		req.Header.Set("Authorization", s.AuthHeader())
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("%s %s: %s", method, path, res.Status)
		}
	}
	do(client, "GET", "/version") // TLS handshake outside the clock
	s.ResetRequests()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		id := strconv.Itoa(1000 + i)
		do(client, "POST", "/nodes/pve/lxc?vmid="+id+"&ostemplate="+debianTmpl+"&storage=local-lvm")
		do(client, "POST", "/nodes/pve/lxc/"+id+"/status/start")
		do(client, "GET", "/nodes/pve/lxc/"+id+"/status/current")
		do(client, "POST", "/nodes/pve/lxc/"+id+"/status/stop")
		do(client, "DELETE", "/nodes/pve/lxc/"+id)
	}
	perLifecycle := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(len(s.Requests()))/float64(b.N), "req/lifecycle")

	const n = 20
	t0 := time.Now()
	for i := 0; i < n; i++ {
		do(client, "GET", "/version")
	}
	keep := time.Since(t0)
	t0 = time.Now()
	for i := 0; i < n; i++ {
		do(s.HTTPClient(), "GET", "/version")
	}
	fresh := time.Since(t0)
	b.ReportMetric(float64(fresh)/float64(keep), "newconn/keepalive")
	b.ReportMetric(float64(perLifecycle)/float64(keep/n), "lifecycle/request")
}
