package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

// driverKey names one driver of a run: a backend, and the provider block
// its instances name ("" for a local backend used without one).
type driverKey struct {
	Backend  string `json:"backend"`
	Provider string `json:"provider,omitempty"`
}

func (k driverKey) String() string {
	if k.Provider == "" {
		return k.Backend
	}
	return k.Backend + " (provider " + k.Provider + ")"
}

// session is one command's view of a stack: the loaded file, one open
// driver per (backend, provider) it uses, and one observed snapshot per
// driver, taken once (STYLE.md item 1).
type session struct {
	stack    *manifest.Stack
	stateDir string
	drivers  map[driverKey]drivers.Driver
	observed []drivers.ObservedInstance
	caps     map[string]drivers.Capabilities
	// warnings are problems that did not stop the command (a backend
	// recorded by an earlier run that can no longer be opened).
	warnings []string
}

// newSession is a session of stack with nothing opened or observed yet.
func newSession(stack *manifest.Stack, stateDir string) *session {
	return &session{stack: stack, stateDir: stateDir, drivers: map[driverKey]drivers.Driver{}, caps: map[string]drivers.Capabilities{}}
}

// loadSession loads the stack file named by the global options.
func loadSession(g *globalOptions) (*session, error) {
	st, err := loadStack(g)
	if err != nil {
		return nil, err
	}
	return newSession(st, stateDirOf(g)), nil
}

// loadObserved loads the stack file, takes the one snapshot of every
// backend it uses (observeAll) and prints the warnings to warn: how the
// commands that only look (plan, graph, ps) start.
func loadObserved(ctx context.Context, g *globalOptions, open driverOpener, warn io.Writer) (*session, error) {
	s, err := loadSession(g)
	if err != nil {
		return nil, err
	}
	if err := s.observeAll(ctx, open); err != nil {
		return nil, err
	}
	s.printWarnings(warn)
	return s, nil
}

// stateDirOf is --state-dir / BERTH_STATE_DIR, else the executor's default.
func stateDirOf(g *globalOptions) string {
	if g.StateDir != "" {
		return g.StateDir
	}
	return executor.DefaultStateDir()
}

// fileKeys are the drivers the stack file's instances need, sorted.
func (s *session) fileKeys() []driverKey {
	seen := map[driverKey]bool{}
	var keys []driverKey
	for _, inst := range s.stack.Instances {
		k := driverKey{inst.Backend, inst.Provider}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sortKeys(keys)
	return keys
}

func sortKeys(keys []driverKey) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Backend != keys[j].Backend {
			return keys[i].Backend < keys[j].Backend
		}
		return keys[i].Provider < keys[j].Provider
	})
}

// observeAll opens the drivers the stack file needs plus those an earlier
// run recorded (so objects of an instance whose backend left the file are
// still found as orphans) and observes each once.
func (s *session) observeAll(ctx context.Context, open driverOpener) error {
	return s.observe(ctx, open, s.fileKeys(), readRecordedKeys(s.stateDir, s.stack.Name))
}

// observe opens the drivers of the keys and takes one snapshot of each,
// concurrently. A driver of needed that cannot be opened or observed is an
// error; one of optional (and not also needed) only a warning.
func (s *session) observe(ctx context.Context, open driverOpener, needed, optional []driverKey) error {
	required := map[driverKey]bool{}
	for _, k := range needed {
		required[k] = true
	}
	keys := append([]driverKey(nil), needed...)
	for _, k := range optional {
		if !required[k] {
			keys = append(keys, k)
		}
	}
	var opened []driverKey
	var errs []error
	for _, k := range keys {
		var prov *manifest.Provider
		if k.Provider != "" {
			prov = s.stack.Providers[k.Provider]
			if prov == nil {
				if required[k] {
					errs = append(errs, fmt.Errorf("backend %s: provider %q is not defined in %s", k.Backend, k.Provider, s.stack.File))
				} else {
					s.warnings = append(s.warnings, fmt.Sprintf("provider %q is no longer in the stack file: objects the stack left on it are not checked", k.Provider))
				}
				continue
			}
		}
		d, err := open(k.Backend, prov, s.stack)
		if err != nil {
			if required[k] {
				errs = append(errs, err)
			} else {
				s.warnings = append(s.warnings, fmt.Sprintf("%s (used by an earlier run) cannot be opened, its objects are not checked: %v", k, err))
			}
			continue
		}
		s.drivers[k] = d
		s.caps[k.Backend] = d.Capabilities()
		opened = append(opened, k)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	results := make([][]drivers.ObservedInstance, len(opened))
	obsErrs := make([]error, len(opened))
	var wg sync.WaitGroup
	for i, k := range opened {
		wg.Add(1)
		go func() {
			defer wg.Done()
			objs, err := s.drivers[k].Observe(ctx, s.stack.Name)
			if err != nil {
				obsErrs[i] = fmt.Errorf("observe %s: %w", k, err)
				return
			}
			for j := range objs {
				if objs[j].Ref.Backend == "" {
					objs[j].Ref.Backend = k.Backend
				}
				if objs[j].Ref.Provider == "" {
					objs[j].Ref.Provider = k.Provider
				}
			}
			results[i] = objs
		}()
	}
	wg.Wait()
	for i, k := range opened {
		if obsErrs[i] == nil {
			s.observed = append(s.observed, results[i]...)
			continue
		}
		if required[k] {
			errs = append(errs, obsErrs[i])
		} else {
			s.warnings = append(s.warnings, obsErrs[i].Error())
			delete(s.drivers, k)
		}
	}
	return errors.Join(errs...)
}

// driver is the executor's driver lookup.
func (s *session) driver(backend, provider string) (drivers.Driver, error) {
	if d, ok := s.drivers[driverKey{backend, provider}]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("backend %s: no driver open for provider %q", backend, provider)
}

// plan runs the planner on the snapshot.
func (s *session) plan(mode planner.Mode, keepOrphans bool) (*planner.Plan, error) {
	return planner.Compute(planner.Input{
		Stack:        s.stack,
		Observed:     s.observed,
		Capabilities: s.caps,
		Mode:         mode,
		KeepOrphans:  keepOrphans,
	})
}

// owned is the part of the snapshot this stack owns.
func (s *session) owned() []drivers.ObservedInstance {
	return ownedBy(s.stack.Name, s.observed)
}

// ownedBy filters a snapshot to the objects of one stack, sorted by
// backend, provider and object name.
func ownedBy(stack string, observed []drivers.ObservedInstance) []drivers.ObservedInstance {
	var out []drivers.ObservedInstance
	for _, o := range observed {
		if o.Owner != nil && o.Owner.Stack == stack {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Ref, out[j].Ref
		if a.Backend != b.Backend {
			return a.Backend < b.Backend
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Name < b.Name
	})
	return out
}

// printWarnings writes the stack file's load warnings and the session's
// own to w.
func (s *session) printWarnings(w io.Writer) {
	printWarnings(w, s.stack)
	for _, m := range s.warnings {
		fmt.Fprintln(w, "warning:", m)
	}
}

// recordedKeysPath is where berth remembers which drivers a stack used, so
// a later run still finds (and deletes) objects on a backend the stack file
// no longer mentions.
func recordedKeysPath(stateDir, stack string) string {
	return filepath.Join(stateDir, stack+".backends.json")
}

func readRecordedKeys(stateDir, stack string) []driverKey {
	data, err := os.ReadFile(recordedKeysPath(stateDir, stack))
	if err != nil {
		return nil
	}
	var keys []driverKey
	if json.Unmarshal(data, &keys) != nil {
		return nil
	}
	return keys
}

// recordKeys saves the drivers that hold or will hold objects of the
// stack: those the file needs and those where objects of it were seen.
// With none left (after down) the record is removed.
func (s *session) recordKeys(includeFile bool) error {
	seen := map[driverKey]bool{}
	var keys []driverKey
	add := func(k driverKey) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if includeFile {
		for _, k := range s.fileKeys() {
			add(k)
		}
	}
	for _, o := range s.owned() {
		add(driverKey{o.Ref.Backend, o.Ref.Provider})
	}
	path := recordedKeysPath(s.stateDir, s.stack.Name)
	if len(keys) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	sortKeys(keys)
	data, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.stateDir, 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
