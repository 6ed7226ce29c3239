package main

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/drivers/lxc"
	"github.com/berth-dev/berth/manifest"
)

// lxcDrivers caches one LXC driver per provider setting, so every node
// of an apply shares it (bridge creation is serialised inside a driver)
// and lxc-config runs once.
var lxcDrivers sync.Map // lxc.Config -> *lxc.Driver

// openLXC opens the lxc backend. Without a provider block the system
// lxcpath (`lxc-config lxc.lxcpath`) is used and veth networks must name
// their bridge; a provider of type lxc sets lxcpath and a default bridge,
// which berth creates when missing. A relative lxcpath is relative to the
// stack file.
func openLXC(p *manifest.Provider, s *manifest.Stack) (drivers.Driver, error) {
	var cfg lxc.Config
	if p != nil {
		if p.Type != "" && p.Type != "lxc" {
			return nil, fmt.Errorf("backend lxc: provider %s has type %q, want lxc", p.Name, p.Type)
		}
		cfg = lxc.Config{LXCPath: p.LXCPath, Provider: p.Name, Bridge: p.Bridge, CreateBridge: p.Bridge != ""}
		if cfg.LXCPath != "" && !filepath.IsAbs(cfg.LXCPath) && s != nil && s.Dir != "" {
			cfg.LXCPath = filepath.Join(s.Dir, cfg.LXCPath)
		}
	}
	if d, ok := lxcDrivers.Load(cfg); ok {
		return d.(*lxc.Driver), nil
	}
	d, err := lxc.New(cfg, hostcmd.Local{})
	if err != nil {
		return nil, err
	}
	actual, _ := lxcDrivers.LoadOrStore(cfg, d)
	return actual.(*lxc.Driver), nil
}
