package manifest

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ProviderTypeFor maps each backend to the provider type it needs.
var ProviderTypeFor = map[string]string{
	BackendLXC:        "lxc",
	BackendCrun:       "oci",
	BackendRunc:       "oci",
	BackendProxmoxLXC: "proxmox",
	BackendProxmoxVM:  "proxmox",
}

// IsProxmox reports whether a backend talks to a Proxmox VE API.
func IsProxmox(backend string) bool {
	return backend == BackendProxmoxLXC || backend == BackendProxmoxVM
}

var hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName reports whether s is an RFC 1123 host name label in lower case:
// the rule for stack, instance, provider and object names.
func ValidName(s string) bool { return len(s) <= 63 && hostLabelRE.MatchString(s) }

// checker runs the semantic checks the schema cannot express, on the typed
// stack, reporting at the positions of the fields involved.
type checker struct {
	st     *Stack
	pos    positions
	errs   *errorList
	pruned *pruned // parts cut after schema errors; checks skip what they touch
}

func (c *checker) at(tokens ...string) location {
	loc, _ := c.pos.lookup(tokens)
	return loc
}

func (c *checker) errKey(tokens []string, format string, args ...any) {
	loc := c.at(tokens...)
	p := loc.key
	if p == (pos{}) {
		p = loc.value
	}
	c.errs.add(p, loc.display, format, args...)
}

func (c *checker) errVal(tokens []string, format string, args ...any) {
	loc := c.at(tokens...)
	c.errs.add(loc.value, loc.display, format, args...)
}

// stackName settles the stack name as Compose does: -p, then
// BERTH_PROJECT_NAME (environment or env file), then name:, then the
// directory name made into a valid name.
func (c *checker) stackName(flag string, lookup lookupFunc) {
	envName, _ := lookup("BERTH_PROJECT_NAME")
	switch {
	case flag != "":
		c.st.Name = flag
		if !ValidName(flag) {
			c.errs.add(pos{}, "name", "invalid project name %q from -p/--project-name: %s", flag, patternHelp[hostLabelRE.String()])
		}
	case envName != "":
		c.st.Name = envName
		if !ValidName(envName) {
			c.errs.add(pos{}, "name", "invalid project name %q from BERTH_PROJECT_NAME: %s", envName, patternHelp[hostLabelRE.String()])
		}
	case c.st.Name != "":
		// Checked by the schema.
	default:
		c.st.Name = nameFromDir(c.st.Dir)
		if c.st.Name == "" {
			c.errs.add(pos1, "name", "cannot make a stack name from the directory %q: set name: or use -p", filepath.Base(c.st.Dir))
		}
	}
}

// nameFromDir lowercases a directory name and replaces what a host name
// cannot hold with '-', as Compose does for project names.
func nameFromDir(dir string) string {
	base := strings.ToLower(filepath.Base(dir))
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

func (c *checker) run() {
	c.providers()
	names := slices.Sorted(maps.Keys(c.st.Instances))
	for _, name := range names {
		c.instance(c.st.Instances[name])
	}
	if !c.pruned.name {
		c.objectNames(names)
	}
	c.vmids(names)
	c.cycles(names)
}

func (c *checker) providers() {
	for _, name := range slices.Sorted(maps.Keys(c.st.Providers)) {
		p := c.st.Providers[name]
		base := []string{"providers", name}
		if p.Type != "proxmox" || c.pruned.under(base...) {
			continue
		}
		token := p.TokenID != "" || p.TokenSecret != ""
		login := p.Username != "" || p.Password != ""
		switch {
		case token && login:
			c.errKey(base, "set either token_id/token_secret or username/password, not both")
		case !token && !login:
			c.errKey(base, "a proxmox provider needs credentials: token_id and token_secret (or username and password)")
		case token && p.TokenID == "":
			c.errKey(append(base, "token_secret"), "token_secret needs token_id")
		case token && p.TokenSecret == "":
			c.errKey(append(base, "token_id"), "token_id needs token_secret (write token_secret: ${PVE_TOKEN_SECRET})")
		case login && p.Username == "":
			c.errKey(append(base, "password"), "password needs username")
		case login && p.Password == "":
			c.errKey(append(base, "username"), "username needs password (write password: ${PVE_PASSWORD})")
		}
		if p.TLS != nil && p.TLS.Insecure && (p.TLS.Fingerprint != "" || p.TLS.CAFile != "") {
			c.errKey(append(base, "tls", "insecure"), "insecure: true turns verification off; it cannot be combined with fingerprint or ca_file")
		}
	}
}

func (c *checker) instance(in *Instance) {
	base := []string{"instances", in.Name}
	tok := func(more ...string) []string { return append(append([]string{}, base...), more...) }

	// Provider: exists, has the right type; Proxmox backends default to the
	// only proxmox provider.
	want := ProviderTypeFor[in.Backend]
	if in.Provider != "" {
		p, ok := c.st.Providers[in.Provider]
		switch {
		case !ok && c.pruned.providers[in.Provider]:
		case !ok:
			c.errVal(tok("provider"), "unknown provider %q%s", in.Provider, known("providers", slices.Sorted(maps.Keys(c.st.Providers)), in.Provider))
		case p.Type != want:
			c.errVal(tok("provider"), "provider %q is of type %s; backend %s needs a provider of type %s", in.Provider, p.Type, in.Backend, want)
		}
	} else if IsProxmox(in.Backend) {
		var pve []string
		for _, name := range slices.Sorted(maps.Keys(c.st.Providers)) {
			if c.st.Providers[name].Type == "proxmox" {
				pve = append(pve, name)
			}
		}
		switch len(pve) {
		case 0:
			if len(c.pruned.providers) > 0 {
				break
			}
			c.errVal(tok("backend"), "backend %s needs a provider: add one of type proxmox under providers", in.Backend)
		case 1:
			in.Provider = pve[0]
		default:
			c.errKey(base, "there are several proxmox providers (%s): set provider", strings.Join(pve, ", "))
		}
	}
	if IsProxmox(in.Backend) && in.Node == "" {
		in.Node = "auto"
		if p := c.st.Providers[in.Provider]; p != nil && p.Node != "" {
			in.Node = p.Node
		}
	}

	// What the backend needs to build the guest.
	switch in.Backend {
	case BackendCrun, BackendRunc:
		if in.Image == "" && !c.pruned.under(tok("image")...) {
			c.errKey(base, "missing required field \"image\" (backend %s runs an image: dir:PATH, oci:PATH[:TAG], tar:PATH or a registry reference)", in.Backend)
		}
	case BackendProxmoxLXC:
		if in.Ostemplate == "" && in.Clone == nil && !c.pruned.under(tok("ostemplate")...) && !c.pruned.under(tok("clone")...) {
			c.errKey(base, "backend proxmox-lxc needs ostemplate (a template volume) or clone")
		}
		if in.Ostemplate != "" && in.Clone != nil {
			c.errKey(tok("clone"), "set ostemplate or clone, not both")
		}
		if in.CloudInit != nil && in.CloudInit.User != "" && in.CloudInit.User != "root" {
			c.errVal(tok("cloud_init", "user"), "a container's cloud_init user is always root (its password and ssh_keys are root's)")
		}
		if in.CloudInit != nil && in.CloudInit.Upgrade != nil {
			c.errKey(tok("cloud_init", "upgrade"), "upgrade applies to proxmox-vm only")
		}
	}
	if in.Template != nil && in.Template.Type == "download" && in.Template.Arch == "" {
		in.Template.Arch = "amd64"
	}

	// Healthcheck and dependencies.
	if hc := in.Healthcheck; hc != nil && !hc.Disable && len(hc.Test) == 0 && !c.pruned.under(tok("healthcheck")...) {
		c.errKey(tok("healthcheck"), "a healthcheck needs test (or disable: true)")
	}
	if hc := in.Healthcheck; hc != nil && len(hc.Test) > 0 {
		switch {
		case hc.Test[0] == "CMD" && len(hc.Test) < 2:
			c.errVal(tok("healthcheck", "test"), "[\"CMD\", ...] needs a program to run")
		case hc.Test[0] == "CMD-SHELL" && len(hc.Test) != 2:
			c.errVal(tok("healthcheck", "test"), "[\"CMD-SHELL\", ...] takes exactly one script string")
		case hc.Test[0] == "NONE" && len(hc.Test) != 1:
			c.errVal(tok("healthcheck", "test"), "[\"NONE\"] takes no arguments")
		}
	}
	for _, dep := range slices.Sorted(maps.Keys(in.DependsOn)) {
		d := in.DependsOn[dep]
		target, ok := c.st.Instances[dep]
		switch {
		case !ok && c.pruned.instances[dep]:
		case !ok:
			c.errKey(tok("depends_on", dep), "unknown instance %q%s", dep, known("instances", slices.Sorted(maps.Keys(c.st.Instances)), dep))
		case d.Condition == ConditionHealthy && (target.Healthcheck == nil || target.Healthcheck.Disable) && !c.pruned.under("instances", dep, "healthcheck"):
			c.errKey(tok("depends_on", dep), "condition healthy needs a healthcheck on %s, which has none", dep)
		}
	}

	for i, m := range in.Mounts {
		mt := tok("mounts", strconv.Itoa(i))
		switch {
		case m.Type == "bind" && m.Source == "":
			c.errVal(mt, "a bind mount needs source")
		case m.Type == "tmpfs" && m.Source != "":
			c.errVal(mt, "a tmpfs mount has no source")
		}
	}
	for i, d := range in.Disks {
		dt := tok("disks", strconv.Itoa(i))
		if in.Backend == BackendProxmoxLXC && d.Path == "" {
			c.errVal(dt, "a container disk (mount point) needs path")
		}
		if in.Backend == BackendProxmoxVM && d.Path != "" {
			c.errVal(append(dt, "path"), "path applies to container mount points only (proxmox-lxc)")
		}
		if d.Size == 0 {
			c.errVal(dt, "a disk needs size")
		}
	}
}

// objectNames checks the names berth gives backend objects: valid host
// name labels of at most 63 characters, unique per provider.
func (c *checker) objectNames(names []string) {
	type owner struct{ inst, field string }
	seen := map[string]owner{}
	for _, name := range names {
		in := c.st.Instances[name]
		obj, field := in.ContainerName, "container_name"
		if obj == "" {
			obj, field = c.st.Name+"-"+name, ""
			if c.st.Name != "" && len(obj) > 63 {
				c.errKey([]string{"instances", name}, "object name %q is %d characters; the limit is 63: shorten the stack or instance name, or set container_name", obj, len(obj))
			}
		}
		key := ProviderTypeFor[in.Backend] + "/" + in.Provider + "/" + obj
		if prev, dup := seen[key]; dup {
			tokens := []string{"instances", name}
			if field != "" {
				tokens = append(tokens, field)
			}
			c.errKey(tokens, "object name %q is also used by instances.%s", obj, prev.inst)
			continue
		}
		seen[key] = owner{name, field}
	}
}

// vmids refuses two guests with the same VMID on one provider.
func (c *checker) vmids(names []string) {
	seen := map[string]string{}
	for _, name := range names {
		in := c.st.Instances[name]
		if in.VMID == 0 {
			continue
		}
		key := in.Provider + "/" + strconv.Itoa(int(in.VMID))
		if prev, dup := seen[key]; dup {
			c.errVal([]string{"instances", name, "vmid"}, "vmid %d is also used by instances.%s on provider %s", in.VMID, prev, in.Provider)
			continue
		}
		seen[key] = name
	}
}

// cycles reports each dependency cycle once, naming it "a -> b -> a", at
// the depends_on entry that closes it from its alphabetically first member.
func (c *checker) cycles(names []string) {
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		state[n] = onStack
		stack = append(stack, n)
		in := c.st.Instances[n]
		for _, dep := range slices.Sorted(maps.Keys(in.DependsOn)) {
			if _, ok := c.st.Instances[dep]; !ok {
				continue
			}
			switch state[dep] {
			case unvisited:
				visit(dep)
			case onStack:
				i := len(stack) - 1
				for stack[i] != dep {
					i--
				}
				cyc := append(append([]string{}, stack[i:]...), dep)
				members := append([]string{}, cyc[:len(cyc)-1]...)
				sort.Strings(members)
				key := strings.Join(members, ",")
				if !reported[key] {
					reported[key] = true
					// Rotate so the cycle starts at its first member by name.
					start := 0
					for j, m := range cyc[:len(cyc)-1] {
						if m == members[0] {
							start = j
						}
					}
					rot := append(append([]string{}, cyc[start:len(cyc)-1]...), cyc[:start]...)
					rot = append(rot, rot[0])
					c.errKey([]string{"instances", rot[0], "depends_on", rot[1]}, "dependency cycle: %s", strings.Join(rot, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, n := range names {
		if state[n] == unvisited {
			visit(n)
		}
	}
}

// known renders " (did you mean X?)" or the list of valid names.
func known(what string, names []string, got string) string {
	if s := suggest(got, names); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(names) == 0 {
		return " (no " + what + " are defined)"
	}
	return " (" + what + ": " + strings.Join(names, ", ") + ")"
}
