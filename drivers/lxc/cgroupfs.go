package lxc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// procRoot is where /proc is read from (tests point it at a fake tree).
var procRoot = "/proc"

// unlimitedFloor: cgroup v1 reports "no limit" as a huge number
// (PAGE_COUNTER_MAX pages, 9223372036854771712 on x86_64); anything this
// large is treated as unlimited.
const unlimitedFloor = int64(1) << 60

// cgroupMounts maps a v1 controller name to its mount point, and "" to the
// cgroup2 mount, as /proc/self/mountinfo lists them. Read once.
var cgroupMounts = sync.OnceValue(func() map[string]string {
	return parseCgroupMounts(filepath.Join(procRoot, "self", "mountinfo"))
})

func parseCgroupMounts(path string) map[string]string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, p := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(p) < 3 {
			continue
		}
		switch p[0] {
		case "cgroup2":
			if _, seen := m[""]; !seen {
				m[""] = f[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(p[2], ",") {
				if opt == "memory" || opt == "cpu" {
					m[opt] = f[4]
				}
			}
		}
	}
	return m
}

// cgroupConfig reads the live limits of a running container (its init
// pid) from the cgroup filesystem and returns them keyed like config keys
// (lxc.cgroup.memory.limit_in_bytes = ...), so d.live can render them. A
// limit that is set to unlimited is returned as an empty value. Files that
// cannot be read are left out: the config then speaks for them.
func (d *Driver) cgroupConfig(pid string, mounts map[string]string) containerConfig {
	if pid == "" || mounts == nil {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(procRoot, pid, "cgroup"))
	if err != nil {
		return nil
	}
	paths := map[string]string{} // controller ("" for v2) -> cgroup path
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			paths[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	k := d.keys
	c := containerConfig{}
	read := func(controller, file string) {
		mnt, ok := mounts[controller]
		p, ok2 := paths[controller]
		if !ok || !ok2 {
			return
		}
		b, err := os.ReadFile(filepath.Join(mnt, p, file))
		if err != nil {
			return
		}
		v := strings.TrimSpace(string(b))
		if n, err := strconv.ParseInt(v, 10, 64); (err == nil && (n >= unlimitedFloor || n < 0)) || strings.HasPrefix(v, "max") {
			v = "" // unlimited
		}
		c[k.prefix+file] = []string{v}
	}
	if k.cpuMax != "" {
		read("", k.memory)
		read("", k.swap)
		read("", k.cpuMax)
	} else {
		read("memory", k.memory)
		if d.memsw {
			read("memory", k.swap)
		}
		read("cpu", k.cpuQuota)
		read("cpu", k.cpuPeriod)
	}
	return c
}

// liveRunning renders the live limits of a running container: what its
// cgroup enforces, which differs from the config when someone changed it
// with lxc-cgroup. A limit removed at runtime reads as null.
func (d *Driver) liveRunning(pid string, cfg containerConfig) map[string]json.RawMessage {
	cg := d.cgroupConfig(pid, cgroupMounts())
	if len(cg) == 0 {
		return d.live(cfg)
	}
	merged := containerConfig{}
	for key, v := range cfg {
		merged[key] = v
	}
	for key, v := range cg {
		if v[0] == "" {
			delete(merged, key)
		} else {
			merged[key] = v
		}
	}
	live := d.live(merged)
	// Fields the cgroup says are unlimited while the config limits them:
	// report them as null (no limit), so the planner sees the drift.
	for field, key := range map[string]string{"memory": d.keys.prefix + d.keys.memory, "cpus": d.cpuKey()} {
		if v, ok := cg[key]; ok && v[0] == "" {
			if _, configured := cfg[key]; configured {
				live[field] = json.RawMessage("null")
			}
		}
	}
	return live
}

// cpuKey is the config key whose value carries the CPU limit.
func (d *Driver) cpuKey() string {
	if d.keys.cpuMax != "" {
		return d.keys.prefix + d.keys.cpuMax
	}
	return d.keys.prefix + d.keys.cpuQuota
}
