package lxc

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// bridgeSetup serialises bridge creation: containers started in parallel
// may share one bridge.
type bridgeSetup struct {
	mu sync.Mutex
	// exists reports whether a network interface exists (swapped in
	// tests).
	exists func(name string) bool
}

func (b *bridgeSetup) init() {
	b.exists = func(name string) bool {
		_, err := os.Stat("/sys/class/net/" + name)
		return err == nil
	}
}

// ensureBridges creates the provider's bridge (Config.Bridge) when
// Config.CreateBridge is set, a container attaches to it and it is missing: `ip link add
// BR type bridge`, `ip link set BR up`, and the gateway address of the
// container's static network (if any) on the bridge, so containers with
// static addresses reach each other and the host. Other bridges, and any
// bridge without CreateBridge, are left for lxc-start to report.
func (d *Driver) ensureBridges(ctx context.Context, name string) error {
	if !d.cfg.CreateBridge {
		return nil
	}
	c, err := readConfig(d.dir(name) + "/config")
	if err != nil {
		return nil // lxc-start reports a missing container
	}
	gateways := map[string]string{} // bridge -> gateway/prefix
	var bridges []string
	for i := 0; ; i++ {
		p := fmt.Sprintf("lxc.net.%d.", i)
		typ, ok := c.last(p + "type")
		if !ok {
			break
		}
		link, ok := c.last(p + "link")
		if typ != "veth" || !ok || link != d.cfg.Bridge {
			continue // only the provider's own bridge is berth's to create
		}
		bridges = append(bridges, link)
		gw, gok := c.last(p + "ipv4.gateway")
		addr, aok := c.last(p + "ipv4.address")
		if gok && aok {
			if pfx, err := netip.ParsePrefix(addr); err == nil {
				gateways[link] = fmt.Sprintf("%s/%d", gw, pfx.Bits())
			}
		}
	}
	sort.Strings(bridges)
	d.bridge.mu.Lock()
	defer d.bridge.mu.Unlock()
	for _, br := range bridges {
		if d.bridge.exists(br) {
			continue
		}
		steps := [][]string{{"link", "add", br, "type", "bridge"}, {"link", "set", br, "up"}}
		if gw := gateways[br]; gw != "" {
			steps = append(steps, []string{"addr", "add", gw, "dev", br})
		}
		for _, s := range steps {
			if _, err := d.cmd.Command(ctx, "ip", s...).Output(); err != nil {
				if strings.Contains(err.Error(), "File exists") {
					continue
				}
				return fmt.Errorf("create bridge %s: %w", br, err)
			}
		}
		// Remember that berth made it, so the last delete removes it.
		if err := os.MkdirAll(d.bridgeMarkDir(), 0o755); err == nil {
			os.WriteFile(filepath.Join(d.bridgeMarkDir(), br), nil, 0o644)
		}
	}
	return nil
}

// bridgeMarkDir holds one empty file per bridge berth created for this
// lxcpath.
func (d *Driver) bridgeMarkDir() string { return filepath.Join(d.cfg.LXCPath, ".berth-bridges") }

// vethLinks returns the bridges a container config attaches veth
// interfaces to.
func vethLinks(c containerConfig) []string {
	var links []string
	for i := 0; ; i++ {
		p := fmt.Sprintf("lxc.net.%d.", i)
		typ, ok := c.last(p + "type")
		if !ok {
			return links
		}
		if link, ok := c.last(p + "link"); ok && typ == "veth" {
			links = append(links, link)
		}
	}
}

// releaseBridge deletes a bridge berth created once no container left in
// the lxcpath attaches to it, so `berth down` leaves no interface behind.
// Bridges berth did not create are never touched. deleted is the
// container just destroyed (not counted even if its directory lingers).
func (d *Driver) releaseBridge(ctx context.Context, br, deleted string) error {
	mark := filepath.Join(d.bridgeMarkDir(), br)
	d.bridge.mu.Lock()
	defer d.bridge.mu.Unlock()
	if _, err := os.Stat(mark); err != nil {
		return nil
	}
	configs, _ := filepath.Glob(filepath.Join(d.cfg.LXCPath, "*", "config"))
	for _, cf := range configs {
		if filepath.Base(filepath.Dir(cf)) == deleted {
			continue
		}
		c, err := readConfig(cf)
		if err != nil {
			continue
		}
		for _, l := range vethLinks(c) {
			if l == br {
				return nil // still in use
			}
		}
	}
	if d.bridge.exists(br) {
		if _, err := d.cmd.Command(ctx, "ip", "link", "del", br).Output(); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			return fmt.Errorf("delete bridge %s: %w", br, err)
		}
	}
	os.Remove(mark)
	os.Remove(d.bridgeMarkDir()) // only when empty
	return nil
}
