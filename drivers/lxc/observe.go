package lxc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/drivers"
)

// sidecarName is the ownership record in each berth container's
// directory. lxc-destroy removes it with the directory.
const sidecarName = "berth.json"

// sidecar is the content of berth.json.
type sidecar struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Provider is the provider the container was made through. Two
	// providers pointing at one lxcpath both list it; only this one
	// reports it as owned, so the other never plans to delete it.
	Provider string            `json:"provider,omitempty"`
	Owner    drivers.Ownership `json:"owner"`
}

func (d *Driver) readSidecar(name string) (*sidecar, error) {
	data, err := os.ReadFile(d.dir(name) + "/" + sidecarName)
	if err != nil {
		return nil, err
	}
	var s sidecar
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", name, sidecarName, err)
	}
	return &s, nil
}

// pendingPath is the create-intent record Create writes into the
// container directory (which berth makes itself) before lxc-create runs,
// and renames to berth.json once the container is made. A berth killed in
// between (kill -9, power loss) leaves a container, or before lxc-create
// got far enough only a directory without a config, that this record
// still says berth made: Observe reports either as berth's, to be
// replaced by up or removed by down.
func (d *Driver) pendingPath(name string) string {
	return d.dir(name) + "/.berth-pending.json"
}

// IncompleteSpecHash is the spec hash Observe reports for a container
// whose create never finished (see pendingPath). It matches no real
// spec and comes with no last-applied spec, so the planner replaces the
// half-made container instead of trusting it.
const IncompleteSpecHash = "incomplete-create"

// readOwnerRecord is the container's ownership record: berth.json, else
// the create-intent record of a create that never finished, returned
// with IncompleteSpecHash and no spec. Neither: an fs.ErrNotExist error.
func (d *Driver) readOwnerRecord(name string) (*sidecar, error) {
	sc, err := d.readSidecar(name)
	if !errors.Is(err, fs.ErrNotExist) {
		return sc, err
	}
	data, perr := os.ReadFile(d.pendingPath(name))
	if perr != nil {
		return nil, err
	}
	var p sidecar
	if jerr := json.Unmarshal(data, &p); jerr != nil {
		return nil, fmt.Errorf("%s: %w", d.pendingPath(name), jerr)
	}
	p.Owner.SpecHash, p.Owner.Spec = IncompleteSpecHash, nil
	return &p, nil
}

func (d *Driver) writeSidecar(name string, s sidecar) error {
	data, err := sidecarJSON(s)
	if err != nil {
		return err
	}
	return writeAtomic(d.dir(name)+"/"+sidecarName, data, 0o600)
}

// sidecarJSON is the ownership record as berth.json holds it (and the
// create-intent record, which becomes berth.json).
func sidecarJSON(s sidecar) ([]byte, error) {
	s.Version = 1
	data, err := json.MarshalIndent(s, "", "  ")
	return append(data, '\n'), err
}

// lsColumns are the lxc-ls -F columns Observe asks for. NAME is first so
// every row starts at column 0.
var lsColumns = []string{"NAME", "STATE", "PID", "GROUPS", "AUTOSTART", "IPV4", "IPV6"}

// lsRow is one parsed lxc-ls row, keyed by column name.
type lsRow map[string]string

// parseLs parses `lxc-ls -f -F ...` output. lxc-ls pads columns to the
// widest value and joins multiple values with ", ", so a row is cut at the
// header's column offsets rather than at whitespace. "-" means no value.
func parseLs(out []byte) ([]lsRow, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	var starts []int
	var names []string
	var rows []lsRow
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " ")
		if line == "" {
			continue
		}
		if starts == nil {
			for i := 0; i < len(line); i++ {
				if line[i] != ' ' && (i == 0 || line[i-1] == ' ') {
					starts = append(starts, i)
					end := strings.IndexByte(line[i:], ' ')
					if end < 0 {
						end = len(line) - i
					}
					names = append(names, line[i:i+end])
				}
			}
			if len(names) == 0 || names[0] != "NAME" {
				return nil, fmt.Errorf("lxc-ls: unexpected header %q", line)
			}
			continue
		}
		row := lsRow{}
		for i, s := range starts {
			if s >= len(line) {
				row[names[i]] = ""
				continue
			}
			e := len(line)
			if i+1 < len(starts) && starts[i+1] < e {
				e = starts[i+1]
			}
			v := strings.TrimSpace(line[s:e])
			if v == "-" {
				v = ""
			}
			row[names[i]] = v
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// splitList splits a ", "-joined lxc-ls cell.
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// mapState turns an lxc-ls/lxc-info state into a drivers.State. A stopped
// container that never started (no start log yet) is "created".
func mapState(s string, everStarted bool) drivers.State {
	switch s {
	case "RUNNING":
		return drivers.StateRunning
	case "STOPPED":
		if !everStarted {
			return drivers.StateCreated
		}
		return drivers.StateStopped
	case "FROZEN":
		return drivers.StatePaused
	}
	return drivers.StateUnknown
}

// startLog is the lxc-start -o log of a container; its existence also
// tells a never-started container from a stopped one.
func (d *Driver) startLog(name string) string { return d.dir(name) + "/lxc.log" }

// Observe lists every container of the lxcpath in one lxc-ls pass and
// reads each one's sidecar and config from disk; a running container's
// limits are read from its cgroup files (found through /proc/PID/cgroup),
// so a limit changed with lxc-cgroup outside berth shows as drift. Containers without
// `lxc.group = berth` and a berth.json sidecar are returned with Owner nil
// (foreign: never modified, adopted or deleted). stack is not used for
// filtering: other stacks' and foreign containers are returned too so the
// planner can report name clashes.
func (d *Driver) Observe(ctx context.Context, stack string) ([]drivers.ObservedInstance, error) {
	out, err := d.run(ctx, "lxc-ls", "-f", "-F", strings.Join(lsColumns, ","))
	if err != nil {
		return nil, classify("observe", d.cfg.LXCPath, err)
	}
	rows, err := parseLs(out)
	if err != nil {
		return nil, fmt.Errorf("driver lxc: observe: %w", err)
	}
	obs := make([]drivers.ObservedInstance, 0, len(rows))
	for _, r := range rows {
		name := r["NAME"]
		_, serr := os.Stat(d.startLog(name))
		o := drivers.ObservedInstance{
			Ref:   d.ref(name),
			State: mapState(r["STATE"], serr == nil),
		}
		o.IPs = append(splitList(r["IPV4"]), splitList(r["IPV6"])...)
		if hasGroup(splitList(r["GROUPS"]), "berth") {
			sc, err := d.readOwnerRecord(name)
			switch {
			case err == nil && sc.Provider != d.cfg.Provider:
				// Another provider's (same lxcpath): not ours to manage.
				o.Created = sc.Created
			case err == nil:
				owner := sc.Owner
				o.Owner = &owner
				o.Created = sc.Created
			case errors.Is(err, fs.ErrNotExist):
				// In the berth group without any record: treated as
				// foreign (a copy, or a record removed by hand). A
				// create that died half-way has its create-intent
				// record and is reported owned, to be replaced.
			default:
				return nil, fmt.Errorf("driver lxc: observe %s: %w", name, err)
			}
		}
		if o.Created.IsZero() {
			if fi, err := os.Stat(d.dir(name)); err == nil {
				o.Created = fi.ModTime().UTC()
			}
		}
		if c, err := readConfig(d.dir(name) + "/config"); err == nil {
			live := d.live(c)
			if o.State == drivers.StateRunning {
				live = d.liveRunning(r["PID"], c)
			}
			if o.Owner != nil {
				alignCPUs(live, o.Owner.Spec)
			}
			if len(live) > 0 {
				o.Live = live
			}
		}
		obs = append(obs, o)
	}
	half, err := d.halfMade(rows)
	if err != nil {
		return nil, fmt.Errorf("driver lxc: observe: %w", err)
	}
	obs = append(obs, half...)
	sort.Slice(obs, func(i, j int) bool { return obs[i].Ref.Name < obs[j].Ref.Name })
	return obs, nil
}

// halfMade returns the directories lxc-ls does not list (no config yet)
// that hold this provider's create-intent record: creates that died
// before lxc-create finished. Other such directories are not berth's and
// are left out.
func (d *Driver) halfMade(rows []lsRow) ([]drivers.ObservedInstance, error) {
	entries, err := os.ReadDir(d.cfg.LXCPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	listed := make(map[string]bool, len(rows))
	for _, r := range rows {
		listed[r["NAME"]] = true
	}
	var out []drivers.ObservedInstance
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || listed[name] {
			continue
		}
		if _, err := os.Lstat(d.dir(name) + "/config"); err == nil {
			continue
		}
		sc, err := d.readOwnerRecord(name)
		if err != nil || sc.Provider != d.cfg.Provider {
			continue
		}
		owner := sc.Owner
		out = append(out, drivers.ObservedInstance{Ref: d.ref(name), State: drivers.StateCreated, Owner: &owner, Created: sc.Created})
	}
	return out, nil
}

func hasGroup(groups []string, g string) bool {
	for _, x := range groups {
		if x == g {
			return true
		}
	}
	return false
}

func (d *Driver) ref(name string) drivers.ObjectRef {
	return drivers.ObjectRef{Backend: BackendName, Provider: d.cfg.Provider, Name: name}
}
