package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
)

// testDriverEnv names a directory that, when set, makes every backend an
// in-memory driver (drivers/memdriver) whose objects persist in
// DIR/<backend>[@<provider>].json between runs. The end-to-end tests of the
// built binary use it; it is not for users.
const testDriverEnv = "BERTH_TEST_MEMDRIVER_DIR"

// testDriverBlockEnv ("op:object-name[,op:object-name...]") makes those
// calls of the test driver hang until their context ends, so tests can
// interrupt a run mid-action.
const testDriverBlockEnv = "BERTH_TEST_MEMDRIVER_BLOCK"

// openTestDriver serves the test hook; ok is false when it is not set.
func openTestDriver(backend string, p *manifest.Provider, _ *manifest.Stack) (drivers.Driver, bool, error) {
	dir := os.Getenv(testDriverEnv)
	if dir == "" {
		return nil, false, nil
	}
	name := backend
	if p != nil {
		name += "@" + p.Name
	}
	d := &persistedMem{Driver: memdriver.New(backend), path: filepath.Join(dir, name+".json")}
	for _, b := range strings.Split(os.Getenv(testDriverBlockEnv), ",") {
		if op, obj, ok := strings.Cut(b, ":"); ok {
			d.Block(memdriver.Op(op), obj) // never released: only cancellation ends it
		}
	}
	data, err := os.ReadFile(d.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, true, err
	}
	if err == nil {
		var objs []drivers.ObservedInstance
		if err := json.Unmarshal(data, &objs); err != nil {
			return nil, true, fmt.Errorf("%s: %w", d.path, err)
		}
		for _, o := range objs {
			d.Put(o)
		}
	}
	return d, true, nil
}

// persistedMem is a memdriver that saves its objects after every
// mutating call.
type persistedMem struct {
	*memdriver.Driver
	path string
	mu   sync.Mutex
}

func (d *persistedMem) save(err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	data, merr := json.MarshalIndent(d.Objects(), "", "  ")
	if merr == nil {
		merr = os.WriteFile(d.path, data, 0o644)
	}
	return errors.Join(err, merr)
}

func (d *persistedMem) Create(ctx context.Context, t drivers.Target) (drivers.ObjectRef, error) {
	ref, err := d.Driver.Create(ctx, t)
	return ref, d.save(err)
}

func (d *persistedMem) Start(ctx context.Context, ref drivers.ObjectRef) error {
	return d.save(d.Driver.Start(ctx, ref))
}

func (d *persistedMem) Stop(ctx context.Context, ref drivers.ObjectRef, timeout time.Duration) error {
	return d.save(d.Driver.Stop(ctx, ref, timeout))
}

func (d *persistedMem) Delete(ctx context.Context, ref drivers.ObjectRef) error {
	return d.save(d.Driver.Delete(ctx, ref))
}

func (d *persistedMem) Update(ctx context.Context, ref drivers.ObjectRef, t drivers.Target, changed []string) error {
	return d.save(d.Driver.Update(ctx, ref, t, changed))
}
