package pvesim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestLatencyFault: a call with injected latency does not answer before
// the latency is over (an hour here, so a client giving up after a
// fraction of a second must time out), other endpoints are not delayed,
// and ClearFaults removes the latency.
func TestLatencyFault(t *testing.T) {
	s := newSim(t, Options{})
	get := func(path string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+path, nil)
		req.Header.Set("Authorization", s.AuthHeader())
		res, err := s.HTTPClient().Do(req)
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	s.SetLatency("GET", "/version", time.Hour)
	if err := get("/version"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GET /version with an hour of latency answered: err = %v", err)
	}
	// Another endpoint is not delayed (no timed assertion: an answer
	// within the half second is all that is asked).
	mustOK(t, call(t, s, "GET", "/nodes", nil), nil)
	s.ClearFaults()
	mustOK(t, call(t, s, "GET", "/version", nil), nil) // no client timeout: nothing here is timed
}
