package pvesim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// GET /version
func hVersion(s *Sim, r *reqCtx) (any, error) {
	return map[string]any{"version": "9.1.1", "release": "9.1", "repoid": "42db4a6cf", "console": "xtermjs"}, nil
}

// GET /nodes
func hNodes(s *Sim, r *reqCtx) (any, error) {
	out := []map[string]any{}
	for _, n := range s.nodes {
		out = append(out, map[string]any{
			"node": n.name, "status": "online", "type": "node", "id": "node/" + n.name,
			"cpu": 0.02, "maxcpu": n.cpus, "mem": s.nodeMemUsed(n), "maxmem": n.mem,
			"disk": 5 << 30, "maxdisk": 100 << 30, "uptime": int64(time.Since(s.started).Seconds()) + 86400,
			"level": "", "ssl_fingerprint": s.fingerprint,
		})
	}
	return out, nil
}

func (s *Sim) nodeMemUsed(n *node) int64 {
	used := int64(2 << 30)
	for _, g := range s.guests {
		if g.node == n.name {
			used += g.memUsed()
		}
	}
	return used
}

// GET /nodes/{node}/status
func hNodeStatus(s *Sim, r *reqCtx) (any, error) {
	n := s.findNode(r.node)
	used := s.nodeMemUsed(n)
	return map[string]any{
		"cpu": 0.02, "uptime": int64(time.Since(s.started).Seconds()) + 86400,
		"loadavg":        []string{"0.10", "0.12", "0.09"},
		"cpuinfo":        map[string]any{"cpus": n.cpus, "cores": n.cpus, "sockets": 1, "model": "Simulated CPU (berth pvesim)", "mhz": "2400.000", "hvm": "1", "flags": "", "user_hz": 100},
		"memory":         map[string]any{"total": n.mem, "used": used, "free": n.mem - used, "available": n.mem - used},
		"rootfs":         map[string]any{"total": 100 << 30, "used": 5 << 30, "free": 95 << 30, "avail": 95 << 30},
		"swap":           map[string]any{"total": 0, "used": 0, "free": 0},
		"pveversion":     "pve-manager/9.1.1/42db4a6cf",
		"kversion":       "Linux 6.17.2-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1",
		"current-kernel": map[string]any{"sysname": "Linux", "release": "6.17.2-1-pve", "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.17.2-1", "machine": "x86_64"},
		"boot-info":      map[string]any{"mode": "efi", "secureboot": 0},
	}, nil
}

// GET /cluster/status
func hClusterStatus(s *Sim, r *reqCtx) (any, error) {
	out := []map[string]any{{"type": "cluster", "id": "cluster", "name": "berth-sim", "nodes": len(s.nodes), "quorate": 1, "version": len(s.nodes)}}
	for i, n := range s.nodes {
		out = append(out, map[string]any{"type": "node", "id": "node/" + n.name, "name": n.name, "nodeid": i + 1, "online": 1, "ip": n.ip, "level": "", "local": b2i(i == 0)})
	}
	return out, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// GET /cluster/nextid: the lowest free id as a JSON string; reserves
// nothing, so parallel creates can race for it exactly as on PVE.
func hNextID(s *Sim, r *reqCtx) (any, error) {
	if r.has("vmid") {
		id := r.int("vmid", 0)
		if s.guests[id] != nil {
			return nil, paramErr("vmid", fmt.Sprintf("VM %d already exists", id))
		}
		return strconv.Itoa(id), nil
	}
	for id := 100; ; id++ {
		if s.guests[id] == nil {
			return strconv.Itoa(id), nil
		}
	}
}

// refreshStats runs a pvestatd cycle when StatsLag has elapsed.
func (s *Sim) refreshStats() {
	if s.opts.StatsLag > 0 && time.Since(s.cycleAt) < s.opts.StatsLag {
		return
	}
	s.cycleAt = time.Now()
	for _, g := range s.guests {
		g.rrd = &rrdSample{name: g.name(), status: g.status, mem: g.memUsed()}
	}
}

// GET /cluster/resources
func hResources(s *Sim, r *reqCtx) (any, error) {
	s.refreshStats()
	typ := r.str("type")
	out := []map[string]any{}
	if (typ == "" || typ == "vm") && r.canAudit() {
		for _, id := range s.sortedIDs() {
			g := s.guests[id]
			e := map[string]any{
				"id": fmt.Sprintf("%s/%d", g.kind, g.vmid), "type": g.kind, "vmid": g.vmid, "node": g.node,
				"maxmem": g.maxMem(), "maxcpu": g.cpus(s), "maxdisk": s.maxDisk(g), "disk": 0,
				"template": b2i(g.isTemplate()), "cpu": 0, "uptime": 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
			}
			if g.rrd == nil || s.opts.StatsLag == 0 {
				if s.opts.StatsLag == 0 {
					e["name"], e["status"], e["mem"] = g.name(), g.status, g.memUsed()
					e["uptime"] = g.uptime()
				} else {
					e["status"] = "unknown"
				}
			} else {
				e["name"], e["status"], e["mem"] = g.rrd.name, g.rrd.status, g.rrd.mem
			}
			if t := g.conf["tags"]; t != "" {
				e["tags"] = t
			}
			if l := g.conf["lock"]; l != "" {
				e["lock"] = l
			}
			out = append(out, e)
		}
	}
	if typ == "" || typ == "node" {
		for _, n := range s.nodes {
			out = append(out, map[string]any{
				"id": "node/" + n.name, "type": "node", "node": n.name, "status": "online",
				"maxcpu": n.cpus, "maxmem": n.mem, "mem": s.nodeMemUsed(n), "cpu": 0.02,
				"maxdisk": 100 << 30, "disk": 5 << 30, "uptime": int64(time.Since(s.started).Seconds()) + 86400,
				"level": "", "cgroup-mode": 2,
			})
		}
	}
	if typ == "" || typ == "storage" {
		for _, n := range s.nodes {
			for _, d := range s.storages {
				used := s.storageUsed(n.name, d.id)
				out = append(out, map[string]any{
					"id": "storage/" + n.name + "/" + d.id, "type": "storage", "storage": d.id, "node": n.name,
					"status": "available", "content": strings.Join(d.content, ","), "plugintype": d.typ,
					"shared": 0, "maxdisk": d.total, "disk": used,
				})
			}
		}
	}
	if typ == "sdn" || typ == "pool" {
		return out, nil
	}
	return out, nil
}

func (s *Sim) storageUsed(nodeName, id string) int64 {
	var used int64
	for _, v := range s.volumes[nodeName] {
		if strings.HasPrefix(v.volid, id+":") {
			used += v.size
		}
	}
	return used
}
