package pvesim

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

func (s *Sim) storageStatus(nodeName string, d *storageDef) map[string]any {
	used := s.storageUsed(nodeName, d.id)
	return map[string]any{
		"storage": d.id, "type": d.typ, "content": strings.Join(d.content, ","),
		"active": 1, "enabled": 1, "shared": 0, "total": d.total, "used": used,
		"avail": d.total - used, "used_fraction": float64(used) / float64(d.total),
	}
}

// GET /nodes/{node}/storage
func hStorageList(s *Sim, r *reqCtx) (any, error) {
	out := []map[string]any{}
	for _, d := range s.storages {
		if r.has("storage") && r.str("storage") != d.id {
			continue
		}
		if c := r.str("content"); c != "" {
			ok := true
			for _, want := range splitList(c) {
				ok = ok && d.supports(want)
			}
			if !ok {
				continue
			}
		}
		out = append(out, s.storageStatus(r.node, d))
	}
	return out, nil
}

func (s *Sim) lookupStorage(r *reqCtx) (*storageDef, error) {
	d := s.storage(r.str("storage"))
	if d == nil {
		return nil, errf(500, "storage '%s' does not exist", r.str("storage"))
	}
	return d, nil
}

// GET /nodes/{node}/storage/{storage}/status
func hStorageStatus(s *Sim, r *reqCtx) (any, error) {
	d, err := s.lookupStorage(r)
	if err != nil {
		return nil, err
	}
	st := s.storageStatus(r.node, d)
	delete(st, "storage")
	delete(st, "used_fraction")
	return st, nil
}

func (v *volume) entry() map[string]any {
	e := map[string]any{"volid": v.volid, "format": v.format, "size": v.size, "content": v.content, "ctime": v.ctime}
	if v.vmid > 0 {
		e["vmid"] = v.vmid
	}
	return e
}

// GET /nodes/{node}/storage/{storage}/content
func hStorageContent(s *Sim, r *reqCtx) (any, error) {
	d, err := s.lookupStorage(r)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(s.volumes[r.node])) {
		v := s.volumes[r.node][id]
		if !strings.HasPrefix(id, d.id+":") {
			continue
		}
		if c := r.str("content"); c != "" && c != v.content {
			continue
		}
		if r.has("vmid") && r.int("vmid", 0) != v.vmid {
			continue
		}
		out = append(out, v.entry())
	}
	return out, nil
}

func (s *Sim) lookupVolume(r *reqCtx) (*volume, error) {
	d, err := s.lookupStorage(r)
	if err != nil {
		return nil, err
	}
	volid := r.str("volume")
	if !strings.Contains(volid, ":") {
		volid = d.id + ":" + volid
	}
	v := s.volumes[r.node][volid]
	if v == nil {
		return nil, errf(500, "volume '%s' does not exist", volid)
	}
	return v, nil
}

// GET /nodes/{node}/storage/{storage}/content/{volume}
func hVolumeGet(s *Sim, r *reqCtx) (any, error) {
	v, err := s.lookupVolume(r)
	if err != nil {
		return nil, err
	}
	p := "/var/lib/vz/template/cache/" + path.Base(v.volid)
	switch v.content {
	case "iso":
		p = "/var/lib/vz/template/iso/" + path.Base(v.volid)
	case "import":
		p = "/var/lib/vz/import/" + path.Base(v.volid)
	case "images", "rootdir":
		p = "/dev/pve/" + strings.SplitN(v.volid, ":", 2)[1]
	}
	return map[string]any{"path": p, "size": v.size, "used": v.size, "format": v.format, "protected": 0}, nil
}

// DELETE /nodes/{node}/storage/{storage}/content/{volume}: a task.
func hVolumeDelete(s *Sim, r *reqCtx) (any, error) {
	v, err := s.lookupVolume(r)
	if err != nil {
		return nil, err
	}
	if g := s.guests[v.vmid]; g != nil && v.vmid > 0 {
		for _, k := range g.diskKeys() {
			if vol, _ := volumeOf(g.conf[k]); vol == v.volid {
				return nil, errf(500, "volume '%s' is still in use by %s %d", v.volid, g.typeName(), g.vmid)
			}
		}
	}
	return s.spawn(r.node, "imgdel", 0, r.taskUser(), func(t *task) error {
		delete(s.volumes[r.node], v.volid)
		t.logf("Removed volume '%s'", v.volid)
		return nil
	}, nil), nil
}

var downloadExt = map[string]*regexp.Regexp{
	"iso":    regexp.MustCompile(`(?i)\.(iso|img)$`),
	"vztmpl": regexp.MustCompile(`(?i)\.tar\.(gz|xz|zst|bz2)$`),
	"import": regexp.MustCompile(`(?i)\.(ova|qcow2|raw|vmdk)$`),
}

// POST /nodes/{node}/storage/{storage}/download-url: a "download" task
// that creates the volume (nothing is fetched).
func hDownloadURL(s *Sim, r *reqCtx) (any, error) {
	d, err := s.lookupStorage(r)
	if err != nil {
		return nil, err
	}
	content := r.str("content")
	if !d.supports(content) {
		return nil, errf(500, "storage '%s' is not configured for content-type '%s'", d.id, content)
	}
	name := r.str("filename")
	if re := downloadExt[content]; re != nil && !re.MatchString(name) {
		return nil, paramErr("filename", "wrong file extension")
	}
	volid := fmt.Sprintf("%s:%s/%s", d.id, content, name)
	if s.volumes[r.node][volid] != nil {
		return nil, errf(500, "refusing to override existing file '%s'", name)
	}
	url := r.str("url")
	return s.spawn(r.node, "download", 0, r.taskUser(), func(t *task) error {
		t.logf("downloading %s to /var/lib/vz/template/%s/%s", url, content, name)
		s.volumes[r.node][volid] = &volume{volid: volid, content: content, format: formatOf(name), size: 100 << 20, ctime: time.Now().Unix()}
		t.logf("download of '%s' to '/var/lib/vz/template/%s/%s' finished", url, content, name)
		return nil
	}, nil), nil
}

func formatOf(name string) string {
	switch {
	case strings.HasSuffix(name, ".iso"), strings.HasSuffix(name, ".img"):
		return "iso"
	case strings.HasSuffix(name, ".tar.zst"):
		return "tzst"
	case strings.HasSuffix(name, ".tar.xz"):
		return "txz"
	case strings.HasSuffix(name, ".tar.gz"):
		return "tgz"
	case strings.HasSuffix(name, ".qcow2"):
		return "qcow2"
	}
	return "raw"
}

// The appliance index the simulator offers (pveam available).
var aplIndex = []map[string]any{
	{"template": "debian-12-standard_12.12-1_amd64.tar.zst", "package": "debian-12-standard", "version": "12.12-1", "os": "debian-12", "section": "system", "type": "lxc", "headline": "Debian 12 Bookworm (standard)"},
	{"template": "debian-13-standard_13.1-2_amd64.tar.zst", "package": "debian-13-standard", "version": "13.1-2", "os": "debian-13", "section": "system", "type": "lxc", "headline": "Debian 13 Trixie (standard)"},
	{"template": "alpine-3.22-default_20250617_amd64.tar.xz", "package": "alpine-3.22-default", "version": "20250617", "os": "alpine-3.22", "section": "system", "type": "lxc", "headline": "Alpine Linux 3.22"},
	{"template": "ubuntu-24.04-standard_24.04-2_amd64.tar.zst", "package": "ubuntu-24.04-standard", "version": "24.04-2", "os": "ubuntu-24.04", "section": "system", "type": "lxc", "headline": "Ubuntu 24.04 Noble (standard)"},
}

// GET /nodes/{node}/aplinfo
func hAplinfo(s *Sim, r *reqCtx) (any, error) {
	out := []map[string]any{}
	for _, a := range aplIndex {
		e := map[string]any{"location": "http://download.proxmox.com/images/system/" + a["template"].(string), "maintainer": "Proxmox Support Team <support@proxmox.com>"}
		for k, v := range a {
			e[k] = v
		}
		out = append(out, e)
	}
	return out, nil
}

// POST /nodes/{node}/aplinfo: download an appliance template (task).
func hAplDownload(s *Sim, r *reqCtx) (any, error) {
	d, err := s.lookupStorage(r)
	if err != nil {
		return nil, err
	}
	name := r.str("template")
	found := false
	for _, a := range aplIndex {
		found = found || a["template"] == name
	}
	if !found {
		return nil, errf(400, "no such template")
	}
	if !d.supports("vztmpl") {
		return nil, errf(500, "storage '%s' does not support templates", d.id)
	}
	volid := d.id + ":vztmpl/" + name
	return s.spawn(r.node, "download", 0, r.taskUser(), func(t *task) error {
		t.logf("starting template download from: http://download.proxmox.com/images/system/%s", name)
		s.volumes[r.node][volid] = &volume{volid: volid, content: "vztmpl", format: formatOf(name), size: 120 << 20, ctime: time.Now().Unix()}
		t.logf("download of '%s' finished", name)
		return nil
	}, nil), nil
}
