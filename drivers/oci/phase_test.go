package oci

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/manifest"
)

func TestPhases(t *testing.T) {
	d := realDriver(t, "crun")
	rootfs := busyboxRootfs(t)
	ctx := context.Background()
	var mu sync.Mutex
	var tw, tc, ts time.Duration
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			tg := target(fmt.Sprintf("p%d", i), &manifest.Instance{Image: "dir:" + rootfs, Command: []string{"sleep", "100"}})
			s := time.Now()
			img, _ := d.images.Resolve(ctx, tg.Instance.Image, "")
			b := d.bundleDir(tg.ObjectName)
			removeBundle(b)
			d.writeBundle(b, tg, img)
			w := time.Since(s)
			s = time.Now()
			if err := d.createContainer(ctx, tg.ObjectName, b); err != nil {
				t.Error(err)
			}
			c := time.Since(s)
			s = time.Now()
			d.run(ctx, tg.ObjectName, "start", tg.ObjectName)
			st := time.Since(s)
			mu.Lock()
			tw, tc, ts = tw+w, tc+c, ts+st
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("wall %v; per container: write bundle %v, create %v, start %v", time.Since(start), tw/20, tc/20, ts/20)
}
