package main

import (
	"fmt"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// driverOpener opens the driver serving one backend of a stack. p is the
// provider block the instances name (nil for a local backend used without
// one). Commands take it as an option so tests inject drivers/memdriver.
type driverOpener func(backend string, p *manifest.Provider, s *manifest.Stack) (drivers.Driver, error)

// openDriver is the production driverOpener: one case per backend package.
// Each driver helper adds its case here.
func openDriver(backend string, p *manifest.Provider, s *manifest.Stack) (drivers.Driver, error) {
	if d, ok, err := openTestDriver(backend, p, s); ok {
		return d, err
	}
	switch backend {
	case manifest.BackendCrun, manifest.BackendRunc:
		return openOCI(backend, p, s)
	case manifest.BackendLXC:
		return openLXC(p, s)
	case manifest.BackendProxmoxLXC, manifest.BackendProxmoxVM:
		return nil, fmt.Errorf("backend %s: driver not implemented yet", backend)
	default:
		return nil, fmt.Errorf("backend %q: unknown backend (want lxc, crun, runc, proxmox-lxc or proxmox-vm)", backend)
	}
}
