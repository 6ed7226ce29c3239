// Command berth-pvesim runs the Proxmox VE API simulator so the Proxmox
// examples can be tried without a cluster. It prints the endpoint, the
// certificate fingerprint and an API token, then serves until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-dev/berth/drivers/proxmox/pvesim"
)

type options struct {
	addr       string
	nodes      int
	secret     string
	authDelay  time.Duration
	taskTime   time.Duration
	statsLag   time.Duration
	agentDelay time.Duration
	certOut    string
	verbose    bool
}

func main() {
	var o options
	flag.StringVar(&o.addr, "listen", envOr("BERTH_PVESIM_LISTEN", "127.0.0.1:8006"), "address to listen on (env BERTH_PVESIM_LISTEN)")
	flag.IntVar(&o.nodes, "nodes", 1, "number of cluster nodes")
	flag.StringVar(&o.secret, "token-secret", os.Getenv("BERTH_PVESIM_TOKEN_SECRET"), "secret of the root@pam!berth token (default random; env BERTH_PVESIM_TOKEN_SECRET)")
	flag.DurationVar(&o.authDelay, "auth-delay", 3*time.Second, "delay of 401 answers (PVE: 3s)")
	flag.DurationVar(&o.taskTime, "task-duration", 2*time.Second, "how long each task runs")
	flag.DurationVar(&o.statsLag, "stats-lag", 10*time.Second, "pvestatd cycle for /cluster/resources name/status (0 = live)")
	flag.DurationVar(&o.agentDelay, "agent-delay", 5*time.Second, "time after VM start until the guest agent answers")
	flag.StringVar(&o.certOut, "cert-out", "", "write the server certificate (PEM) to this file")
	flag.BoolVar(&o.verbose, "v", false, "log every request")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "berth-pvesim:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run starts the simulator, prints how to reach it and serves until ctx
// is done.
func run(ctx context.Context, o options, out io.Writer) error {
	opts := pvesim.Options{
		Addr: o.addr, Nodes: o.nodes, TokenSecret: o.secret,
		AuthFailureDelay: o.authDelay, StatsLag: o.statsLag, AgentDelay: o.agentDelay,
		TaskDurations: map[string]time.Duration{"": o.taskTime},
	}
	if o.verbose {
		opts.Logf = log.New(os.Stderr, "pvesim: ", log.LstdFlags).Printf
	}
	s, err := pvesim.New(opts)
	if err != nil {
		return err
	}
	defer s.Close()
	if o.certOut != "" {
		if err := os.WriteFile(o.certOut, s.CertPEM(), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Proxmox VE API simulator listening\n")
	fmt.Fprintf(out, "  endpoint:     %s\n", s.URL())
	fmt.Fprintf(out, "  fingerprint:  %s\n", s.Fingerprint())
	fmt.Fprintf(out, "  token id:     %s\n", s.TokenID())
	fmt.Fprintf(out, "  token secret: %s\n", s.TokenSecret())
	fmt.Fprintf(out, "  password:     root@pam / %s\n", s.Password())
	if o.certOut != "" {
		fmt.Fprintf(out, "  certificate:  %s\n", o.certOut)
	}
	fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
	<-ctx.Done()
	return nil
}
