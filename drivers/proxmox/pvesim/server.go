// Package pvesim is an in-process Proxmox VE 9.x API simulator: an HTTPS
// server on loopback that serves /api2/json for the endpoints berth's
// Proxmox drivers use, faithful to PVE's wire format (reason phrases in the
// status line, {"data": ...} bodies, 400 errors maps), its validation, its
// asynchronous tasks and locks. It exists because no PVE server can run on
// our machines and the public fakes miss exactly the behaviour drivers trip
// over. What it models and what it does not is in docs/pvesim.md.
package pvesim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a simulator. The zero value is a one-node cluster
// ("pve") with instant tasks, no authentication failure delay and live
// cluster/resources stats: what tests want.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// Nodes is the number of cluster nodes (default 1), named pve, pve2, ...
	// unless NodeNames is set.
	Nodes     int
	NodeNames []string
	// NodeCPUs and NodeMemory are each node's capacity (default 8 CPUs, 32 GiB).
	NodeCPUs   int
	NodeMemory int64
	// TokenID ("user@realm!name") and TokenSecret of the seeded API token;
	// defaults "root@pam!berth" and a random UUID.
	TokenID     string
	TokenSecret string
	// Tokens are additional API tokens, e.g. a read-only one.
	Tokens []Token
	// Password of root@pam for ticket login (default "berth").
	Password string
	// AuthFailureDelay delays 401 answers (PVE: 3 s).
	AuthFailureDelay time.Duration
	// TaskDurations is how long a task of each worker type (qmcreate,
	// vzstart, ...) runs; key "" is the default for unlisted types.
	TaskDurations map[string]time.Duration
	// StatsLag models pvestatd's cycle: /cluster/resources reports guest
	// name/status/mem as of the last cycle (0 = always live).
	StatsLag time.Duration
	// AgentDelay is how long after start the QEMU guest agent answers.
	AgentDelay time.Duration
	// NoSeed leaves out the seeded templates (LXC ostemplates and the
	// cloud-init QEMU template VM 9000).
	NoSeed bool
	// Logf, when set, receives one line per request.
	Logf func(format string, args ...any)
}

// Sim is a running simulator. All state is behind one mutex: handlers run
// one at a time, which is how a single PVE node serialises config changes
// (per-guest flock) closely enough for driver tests.
type Sim struct {
	opts        Options
	ln          net.Listener
	certPEM     []byte
	fingerprint string
	ticketKey   []byte
	started     time.Time

	mu         sync.Mutex
	nodes      []*node
	storages   []*storageDef
	volumes    map[string]map[string]*volume // node -> volid -> volume
	guests     map[int]*guest
	tasks      map[string]*task
	taskList   []*task
	pidSeq     int
	macSeq     int
	tokens     []Token
	faults     []*fault
	taskFaults map[string][]TaskFault
	reqlog     []Request
	cycleAt    time.Time

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
	connMu sync.Mutex
	conns  map[net.Conn]struct{}
}

// New builds a simulator and starts serving; Close stops it.
func New(opts Options) (*Sim, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TokenID == "" {
		opts.TokenID = "root@pam!berth"
	}
	if opts.TokenSecret == "" {
		opts.TokenSecret = randomUUID()
	}
	if opts.Password == "" {
		opts.Password = "berth"
	}
	if opts.NodeCPUs == 0 {
		opts.NodeCPUs = 8
	}
	if opts.NodeMemory == 0 {
		opts.NodeMemory = 32 << 30
	}
	if len(opts.NodeNames) == 0 {
		n := opts.Nodes
		if n <= 0 {
			n = 1
		}
		for i := 1; i <= n; i++ {
			name := "pve"
			if i > 1 {
				name = fmt.Sprintf("pve%d", i)
			}
			opts.NodeNames = append(opts.NodeNames, name)
		}
	}
	certPEM, keyPEM, fp, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("pvesim: certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pvesim: certificate: %w", err)
	}
	raw, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("pvesim: listen: %w", err)
	}
	// HTTP/1.1 only: the reason phrase carries PVE's error text.
	ln := tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		opts: opts, ln: ln, certPEM: certPEM, fingerprint: fp,
		ticketKey: []byte(randomUUID()), started: time.Now(),
		volumes: map[string]map[string]*volume{}, guests: map[int]*guest{},
		tasks: map[string]*task{}, pidSeq: 10000, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, tokens: append([]Token(nil), opts.Tokens...),
	}
	s.seed()
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// URL is the API base, e.g. https://127.0.0.1:41234/api2/json.
func (s *Sim) URL() string { return "https://" + s.ln.Addr().String() + "/api2/json" }

// Addr is the listening host:port.
func (s *Sim) Addr() string { return s.ln.Addr().String() }

// Fingerprint is the SHA-256 fingerprint of the server certificate in PVE's
// notation (upper-case hex pairs joined by ':').
func (s *Sim) Fingerprint() string { return s.fingerprint }

// CertPEM is the self-signed server certificate, for CA pinning.
func (s *Sim) CertPEM() []byte { return append([]byte(nil), s.certPEM...) }

// TokenID is the seeded API token id ("root@pam!berth").
func (s *Sim) TokenID() string { return s.opts.TokenID }

// TokenSecret is the seeded API token's secret.
func (s *Sim) TokenSecret() string { return s.opts.TokenSecret }

// AuthHeader is the Authorization header value for the seeded token.
func (s *Sim) AuthHeader() string { return "PVEAPIToken=" + s.opts.TokenID + "=" + s.opts.TokenSecret }

// Password is root@pam's password for ticket login.
func (s *Sim) Password() string { return s.opts.Password }

// HTTPClient returns a client that trusts the simulator's certificate.
func (s *Sim) HTTPClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.certPEM)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
		ForceAttemptHTTP2: false,
	}}
}

// Close stops serving and abandons running tasks.
func (s *Sim) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.connMu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.connMu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Sim) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.connMu.Lock()
		s.conns[c] = struct{}{}
		s.connMu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.connMu.Lock()
			delete(s.conns, c)
			s.connMu.Unlock()
			c.Close()
		}()
	}
}

// response is what one request produces on the wire.
type response struct {
	status int
	reason string
	body   []byte
	drop   bool
	delay  time.Duration
}

func (s *Sim) serveConn(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Header.Get("Expect") == "100-continue" && req.ContentLength > 0 {
			if _, err := io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return
			}
		}
		resp := s.handle(req)
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
		if resp.delay > 0 {
			select {
			case <-time.After(resp.delay):
			case <-s.ctx.Done():
				return
			}
		}
		if resp.drop {
			return
		}
		if err := writeResponse(c, resp); err != nil || req.Close {
			return
		}
	}
}

// writeResponse writes a raw HTTP/1.1 response: net/http cannot set a
// custom reason phrase, and PVE's clients read the error from it.
func writeResponse(w io.Writer, r response) error {
	var b bytes.Buffer
	now := time.Now().UTC().Format(http.TimeFormat)
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, r.reason)
	b.WriteString("Cache-Control: max-age=0\r\n")
	b.WriteString("Connection: Keep-Alive\r\n")
	b.WriteString("Date: " + now + "\r\n")
	b.WriteString("Pragma: no-cache\r\n")
	b.WriteString("Server: pve-api-daemon/3.0\r\n")
	if len(r.body) > 0 {
		b.WriteString("Content-Type: application/json;charset=UTF-8\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	b.WriteString("Expires: " + now + "\r\n\r\n")
	b.Write(r.body)
	_, err := w.Write(b.Bytes())
	return err
}

// apiError is a handler failure: status plus PVE's message (first line
// becomes the reason phrase) and, for 400, the per-parameter errors.
type apiError struct {
	status int
	msg    string
	errors map[string]string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func errf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// paramErr is a 400 "Parameter verification failed." with one error.
func paramErr(param, msg string) *apiError {
	return &apiError{status: 400, msg: msgParamFailed, errors: map[string]string{param: msg}}
}

func errorResponse(e *apiError) response {
	reason := strings.SplitN(strings.TrimRight(e.msg, "\n"), "\n", 2)[0]
	body := map[string]any{"data": nil}
	if e.errors != nil {
		body["errors"] = e.errors
	}
	msg := e.msg
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	body["message"] = msg
	b, _ := json.Marshal(body)
	return response{status: e.status, reason: reason, body: b}
}

func dataResponse(data any) response {
	b, err := json.Marshal(struct {
		Data any `json:"data"`
	}{data})
	if err != nil {
		return errorResponse(errf(500, "unable to encode response: %v", err))
	}
	return response{status: 200, reason: "OK", body: b}
}

func selfSigned() (certPEM, keyPEM []byte, fingerprint string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, "", err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "pve.berth.invalid", Organization: []string{"PVE Cluster Node (berth simulator)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:     []string{"localhost", "pve"},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, "", err
	}
	sum := sha256.Sum256(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		colonHex(sum[:]), nil
}

func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
