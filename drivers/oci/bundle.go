package oci

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// Files of a bundle directory (bundles/<backend>/<id>/).
const (
	configFileName  = "config.json"
	sidecarFileName = "berth.json"  // ownership record: `crun list -f json` shows no annotations
	logFileName     = "console.log" // the container's stdout+stderr
	exitFileName    = "exit.json"   // written by the waiter when the process ends
	pidFileName     = "pid"
	stoppedMarker   = "stopped-by-berth" // the last stop was berth's: report stopped, not exited
	resourcesName   = "resources.json"   // input of `<runtime> update -r`
)

// Annotation keys carrying berth's ownership record in config.json.
const (
	AnnotationStack     = "dev.berth.stack"
	AnnotationInstance  = "dev.berth.instance"
	AnnotationSpecHash  = "dev.berth.spec-hash"
	AnnotationOwnership = "dev.berth.ownership" // the whole drivers.Ownership as JSON
)

// ociVersionCrun is the newest spec version crun 1.8.1 accepts (it refuses
// 1.2.0 and later with "unknown version specified").
const ociVersionCrun = "1.0.2"

// Sidecar is berth.json in a bundle: the ownership record plus what Start
// and Delete need to know about the root filesystem.
type Sidecar struct {
	Owner       drivers.Ownership `json:"owner"`
	Image       string            `json:"image"`
	ImageDigest string            `json:"image_digest,omitempty"`
	Lower       string            `json:"lower"`                 // the shared image rootfs
	RootfsMode  string            `json:"rootfs_mode"`           // overlay | copy
	StopSignal  string            `json:"stop_signal,omitempty"` // from the image; default SIGTERM
	// Resources mirrors config.json's memory and CPU limits (nil in a
	// sidecar written before it existed: then config.json is read).
	Resources *liveResources `json:"resources,omitempty"`
}

// stopSignal is the signal name Stop sends first: the image's StopSignal
// when it names one ("SIGQUIT", "QUIT", "3"), else TERM.
func (s *Sidecar) stopSignal() string {
	if s == nil || s.StopSignal == "" {
		return "TERM"
	}
	sig := strings.TrimPrefix(strings.ToUpper(s.StopSignal), "SIG")
	if sig == "" {
		return "TERM"
	}
	return sig
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readSidecar(bundle string) (*Sidecar, error) {
	data, err := os.ReadFile(filepath.Join(bundle, sidecarFileName))
	if err != nil {
		return nil, err
	}
	var s Sidecar
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", sidecarFileName, err)
	}
	return &s, nil
}

// processArgs applies Compose semantics: the instance's entrypoint
// replaces the image's and drops the image's Cmd; its command replaces Cmd.
func processArgs(inst *manifest.Instance, img ImageConfig) ([]string, error) {
	entry, cmd := img.Entrypoint, img.Cmd
	if len(inst.Entrypoint) > 0 {
		entry, cmd = inst.Entrypoint, nil
	}
	if len(inst.Command) > 0 {
		cmd = inst.Command
	}
	args := append(append([]string{}, entry...), cmd...)
	if len(args) == 0 {
		return nil, errNoCommand
	}
	return args, nil
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// buildSpec generates config.json for an instance with runtime-tools.
// rootfs is the instance's private root filesystem; lookup is the image
// rootfs used to resolve user names.
func buildSpec(t drivers.Target, img *Image, rootfs, flavor string) (*rspec.Spec, error) {
	inst := t.Instance
	g, err := generate.New("linux")
	if err != nil {
		return nil, err
	}
	if flavor == manifest.BackendCrun {
		g.SetOCIVersion(ociVersionCrun)
	} else {
		g.SetOCIVersion(rspec.Version)
	}
	g.SetRootPath(rootfs)
	g.SetRootReadonly(inst.ReadOnly)
	host := inst.Hostname
	if host == "" {
		host = inst.Name
	}
	if host == "" {
		host = t.ObjectName
	}
	g.SetHostname(host)
	g.SetProcessTerminal(false)
	g.SetProcessNoNewPrivileges(true)

	args, err := processArgs(inst, img.Config)
	if err != nil {
		return nil, err
	}
	g.SetProcessArgs(args)

	g.ClearProcessEnv()
	env := img.Config.Env
	hasPath := false
	for _, kv := range env {
		hasPath = hasPath || strings.HasPrefix(kv, "PATH=")
	}
	if !hasPath {
		env = append([]string{defaultPath}, env...)
	}
	g.AddMultipleProcessEnv(env)
	keys := make([]string, 0, len(inst.Environment))
	for k := range inst.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g.AddProcessEnv(k, inst.Environment[k])
	}

	cwd := inst.WorkingDir
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	g.SetProcessCwd(cwd)

	user := inst.User
	if user == "" {
		user = img.Config.User
	}
	uid, gid, err := resolveUser(user, img.Rootfs)
	if err != nil {
		return nil, err
	}
	g.SetProcessUID(uid)
	g.SetProcessGID(gid)

	if inst.Memory > 0 {
		g.SetLinuxResourcesMemoryLimit(int64(inst.Memory))
		if inst.Swap > 0 {
			g.SetLinuxResourcesMemorySwap(int64(inst.Memory + inst.Swap))
		}
	}
	if inst.CPUs > 0 {
		g.SetLinuxResourcesCPUPeriod(cpuPeriod)
		g.SetLinuxResourcesCPUQuota(int64(inst.CPUs * cpuPeriod))
	}

	for _, m := range inst.Mounts {
		mnt, err := ociMount(m, t.StackDir)
		if err != nil {
			return nil, err
		}
		g.AddMount(mnt)
	}
	for _, n := range inst.Networks {
		switch n.Type {
		case "host":
			if err := g.RemoveLinuxNamespace("network"); err != nil {
				return nil, err
			}
		case "", "none":
		default:
			return nil, fmt.Errorf("network type %q: %w (the OCI backends support none, the default: loopback only, and host)", n.Type, drivers.ErrUnsupported)
		}
	}

	owner, err := json.Marshal(t.Owner)
	if err != nil {
		return nil, err
	}
	for k, v := range inst.Labels {
		g.AddAnnotation(k, v)
	}
	g.AddAnnotation(AnnotationStack, t.Owner.Stack)
	g.AddAnnotation(AnnotationInstance, t.Owner.Instance)
	g.AddAnnotation(AnnotationSpecHash, t.Owner.SpecHash)
	g.AddAnnotation(AnnotationOwnership, string(owner))
	return g.Config, nil
}

// cpuPeriod is the CFS period berth sets with a CPU limit (100 ms, as Docker).
const cpuPeriod = 100000

func ociMount(m manifest.Mount, stackDir string) (rspec.Mount, error) {
	typ := m.Type
	if typ == "" {
		typ = "bind"
		if m.Source == "" {
			typ = "tmpfs"
		}
	}
	opts := append([]string{}, m.Options...)
	switch typ {
	case "bind":
		src := m.Source
		if src == "" {
			return rspec.Mount{}, fmt.Errorf("mount %s: bind needs a source", m.Target)
		}
		if !filepath.IsAbs(src) && stackDir != "" {
			src = filepath.Join(stackDir, src)
		}
		opts = append([]string{"rbind"}, opts...)
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return rspec.Mount{Destination: m.Target, Type: "bind", Source: src, Options: opts}, nil
	case "tmpfs":
		opts = append([]string{"nosuid", "nodev"}, opts...)
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return rspec.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	}
	return rspec.Mount{}, fmt.Errorf("mount %s: type %q: %w", m.Target, typ, drivers.ErrUnsupported)
}

// resolveUser turns "uid[:gid]" or "name[:group]" into numeric ids, names
// looked up in the image's /etc/passwd and /etc/group.
func resolveUser(user, rootfs string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uidN, gidN := -1, -1
	if n, err := strconv.Atoi(u); err == nil {
		uidN = n
	} else {
		rec := lookupDB(filepath.Join(rootfs, "etc/passwd"), u)
		if rec == nil {
			return 0, 0, fmt.Errorf("user %q: not in the image's /etc/passwd", u)
		}
		uidN, _ = strconv.Atoi(rec[2])
		gidN, _ = strconv.Atoi(rec[3])
	}
	if gidN < 0 {
		gidN = 0
		if rec := lookupDBByID(filepath.Join(rootfs, "etc/passwd"), uidN); rec != nil {
			gidN, _ = strconv.Atoi(rec[3])
		}
	}
	if hasGroup {
		if n, err := strconv.Atoi(g); err == nil {
			gidN = n
		} else {
			rec := lookupDB(filepath.Join(rootfs, "etc/group"), g)
			if rec == nil {
				return 0, 0, fmt.Errorf("group %q: not in the image's /etc/group", g)
			}
			gidN, _ = strconv.Atoi(rec[2])
		}
	}
	if uidN < 0 || gidN < 0 {
		return 0, 0, fmt.Errorf("user %q: invalid", user)
	}
	return uint32(uidN), uint32(gidN), nil
}

func scanDB(path string, match func([]string) bool) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rec := strings.Split(s.Text(), ":")
		if len(rec) >= 4 && match(rec) || len(rec) >= 3 && strings.HasSuffix(path, "group") && match(rec) {
			return rec
		}
	}
	return nil
}

func lookupDB(path, name string) []string {
	return scanDB(path, func(rec []string) bool { return rec[0] == name })
}

func lookupDBByID(path string, id int) []string {
	return scanDB(path, func(rec []string) bool { return len(rec) >= 4 && rec[2] == strconv.Itoa(id) })
}

// BundleConfig returns the config.json berth writes for an instance that
// runs args on a `dir:` root filesystem and sets nothing else, with
// root.path set to rootfs. Benchmarks give it to the shell scripts they
// compare berth with, so both run identical containers.
func BundleConfig(runtime, rootfs string, args []string) ([]byte, error) {
	flavor := manifest.BackendCrun
	if strings.Contains(filepath.Base(runtime), manifest.BackendRunc) {
		flavor = manifest.BackendRunc
	}
	inst := &manifest.Instance{Name: "bench", Command: args}
	spec, err := buildSpec(drivers.Target{Instance: inst, ObjectName: "bench"}, &Image{Rootfs: rootfs}, rootfs, flavor)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(spec, "", "  ")
}
