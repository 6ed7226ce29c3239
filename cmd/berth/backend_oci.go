package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/drivers/oci"
	"github.com/berth-dev/berth/manifest"
)

// ociRootEnv overrides the OCI backends' default root directory
// (/var/lib/berth/oci: bundles, runtime state, image cache).
const ociRootEnv = "BERTH_OCI_ROOT"

// openOCI opens the crun or runc driver. A provider of type "oci" may name
// the runtime binary (`runtime:`, a name or a path) and the root directory
// (`root:`, relative to the stack file).
func openOCI(backend string, p *manifest.Provider, s *manifest.Stack) (drivers.Driver, error) {
	cfg := oci.Config{Runtime: backend, Backend: backend, Root: os.Getenv(ociRootEnv)}
	if p != nil {
		if p.Runtime != "" {
			cfg.Runtime = p.Runtime
		}
		if p.Root != "" {
			cfg.Root = p.Root
			if !filepath.IsAbs(cfg.Root) && s != nil && s.Dir != "" {
				cfg.Root = filepath.Join(s.Dir, cfg.Root)
			}
		}
	}
	return oci.New(cfg, hostcmd.Local{})
}
