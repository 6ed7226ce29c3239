// Package manifest loads a berth stack file: it reads the YAML, interpolates
// variables, checks it against the JSON Schema in package schema, applies
// defaults and runs the semantic checks the schema cannot express. The types
// here are the typed hand-off to the planner and the drivers.
package manifest

// Backend names accepted in an instance's `backend` field.
const (
	BackendLXC        = "lxc"
	BackendCrun       = "crun"
	BackendRunc       = "runc"
	BackendProxmoxLXC = "proxmox-lxc"
	BackendProxmoxVM  = "proxmox-vm"
)

// Dependency conditions of depends_on. Compose spellings (service_started,
// service_healthy, service_completed_successfully) load as these.
const (
	ConditionStarted   = "started"
	ConditionHealthy   = "healthy"
	ConditionCompleted = "completed"
)

// Stack is one loaded, interpolated, validated stack file.
type Stack struct {
	Version   int                  `json:"version" yaml:"version"`
	Name      string               `json:"name" yaml:"name"`
	Providers map[string]*Provider `json:"providers,omitempty" yaml:"providers,omitempty"`
	Instances map[string]*Instance `json:"instances" yaml:"instances"`

	// File is the path the stack was loaded from; Dir is its directory,
	// against which relative paths in the file are resolved.
	File string `json:"-" yaml:"-"`
	Dir  string `json:"-" yaml:"-"`
	// Warnings are problems that do not stop the load, such as a variable
	// that is not set and expands to "" (Compose warns the same way).
	Warnings []string `json:"-" yaml:"-"`
}

// Provider is a named backend endpoint. Local backends (lxc, crun, runc)
// need none; Proxmox backends need one with an endpoint and credentials.
type Provider struct {
	Name string `json:"-" yaml:"-"`
	// Type is the provider kind: "lxc", "oci" or "proxmox".
	Type string `json:"type" yaml:"type"`

	// Local backends.
	LXCPath string `json:"lxcpath,omitempty" yaml:"lxcpath,omitempty"`
	Runtime string `json:"runtime,omitempty" yaml:"runtime,omitempty"` // OCI runtime binary (crun, runc or a path)
	Root    string `json:"root,omitempty" yaml:"root,omitempty"`       // OCI runtime state / bundle directory
	Bridge  string `json:"bridge,omitempty" yaml:"bridge,omitempty"`   // default bridge for veth networks

	// Proxmox.
	Endpoint    string `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
	TokenID     string `json:"token_id,omitempty" yaml:"token_id,omitempty"`
	TokenSecret Secret `json:"token_secret,omitempty" yaml:"token_secret,omitempty"`
	Username    string `json:"username,omitempty" yaml:"username,omitempty"`
	Password    Secret `json:"password,omitempty" yaml:"password,omitempty"`
	TLS         *TLS   `json:"tls,omitempty" yaml:"tls,omitempty"`
	Node        string `json:"node,omitempty" yaml:"node,omitempty"`
}

// TLS says how berth trusts a Proxmox endpoint's certificate.
type TLS struct {
	CAFile      string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty" yaml:"fingerprint,omitempty"` // SHA-256, hex with or without colons
	Insecure    bool   `json:"insecure,omitempty" yaml:"insecure,omitempty"`
}

// Instance is one container or VM of the stack. Fields that do not apply to
// the instance's backend are rejected by validation.
type Instance struct {
	Name     string `json:"-" yaml:"-"`
	Backend  string `json:"backend" yaml:"backend"`
	Provider string `json:"provider,omitempty" yaml:"provider,omitempty"`
	// ContainerName overrides the backend object name, which is
	// "<stack>-<instance>" by default.
	ContainerName string `json:"container_name,omitempty" yaml:"container_name,omitempty"`
	Hostname      string `json:"hostname,omitempty" yaml:"hostname,omitempty"`

	Memory      ByteSize              `json:"memory,omitempty" yaml:"memory,omitempty"`
	Swap        ByteSize              `json:"swap,omitempty" yaml:"swap,omitempty"`
	CPUs        float64               `json:"cpus,omitempty" yaml:"cpus,omitempty"`
	Environment map[string]string     `json:"environment,omitempty" yaml:"environment,omitempty"`
	Labels      map[string]string     `json:"labels,omitempty" yaml:"labels,omitempty"`
	DependsOn   map[string]Dependency `json:"depends_on,omitempty" yaml:"depends_on,omitempty"`
	Healthcheck *Healthcheck          `json:"healthcheck,omitempty" yaml:"healthcheck,omitempty"`
	// Restart is the Compose restart policy: no, always, on-failure,
	// unless-stopped. Autostart starts the instance when its host boots.
	Restart   string `json:"restart,omitempty" yaml:"restart,omitempty"`
	Autostart *bool  `json:"autostart,omitempty" yaml:"autostart,omitempty"`
	// StopGracePeriod is how long a stop waits before killing.
	StopGracePeriod Duration  `json:"stop_grace_period,omitempty" yaml:"stop_grace_period,omitempty"`
	Networks        []Network `json:"networks,omitempty" yaml:"networks,omitempty"`
	Mounts          []Mount   `json:"mounts,omitempty" yaml:"mounts,omitempty"`

	// LXC.
	Template *Template `json:"template,omitempty" yaml:"template,omitempty"`

	// OCI (crun, runc).
	Image      string   `json:"image,omitempty" yaml:"image,omitempty"`
	Command    []string `json:"command,omitempty" yaml:"command,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty" yaml:"entrypoint,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty" yaml:"working_dir,omitempty"`
	User       string   `json:"user,omitempty" yaml:"user,omitempty"`
	ReadOnly   bool     `json:"read_only,omitempty" yaml:"read_only,omitempty"`

	// Proxmox (proxmox-lxc, proxmox-vm).
	Node         string     `json:"node,omitempty" yaml:"node,omitempty"` // "auto" = placement by free memory
	VMID         VMID       `json:"vmid,omitempty" yaml:"vmid,omitempty"` // 0 = auto
	Ostemplate   string     `json:"ostemplate,omitempty" yaml:"ostemplate,omitempty"`
	Rootfs       *Disk      `json:"rootfs,omitempty" yaml:"rootfs,omitempty"`
	Disks        []Disk     `json:"disks,omitempty" yaml:"disks,omitempty"`
	Clone        *Clone     `json:"clone,omitempty" yaml:"clone,omitempty"`
	CloudInit    *CloudInit `json:"cloud_init,omitempty" yaml:"cloud_init,omitempty"`
	Tags         []string   `json:"tags,omitempty" yaml:"tags,omitempty"`
	Onboot       *bool      `json:"onboot,omitempty" yaml:"onboot,omitempty"`
	Description  string     `json:"description,omitempty" yaml:"description,omitempty"`
	Cores        int        `json:"cores,omitempty" yaml:"cores,omitempty"`
	Sockets      int        `json:"sockets,omitempty" yaml:"sockets,omitempty"`
	Unprivileged *bool      `json:"unprivileged,omitempty" yaml:"unprivileged,omitempty"`
	OSType       string     `json:"ostype,omitempty" yaml:"ostype,omitempty"`
	Agent        *bool      `json:"agent,omitempty" yaml:"agent,omitempty"`
	Pool         string     `json:"pool,omitempty" yaml:"pool,omitempty"`
	Protection   bool       `json:"protection,omitempty" yaml:"protection,omitempty"`
}

// Dependency is one entry of depends_on.
type Dependency struct {
	Condition string `json:"condition" yaml:"condition"`
	// Restart and Required mirror Compose; Required=false lets the
	// dependent start even if the dependency is not in this run.
	Required *bool `json:"required,omitempty" yaml:"required,omitempty"`
	Restart  bool  `json:"restart,omitempty" yaml:"restart,omitempty"`
}

// Healthcheck is Compose's healthcheck block.
type Healthcheck struct {
	// Test is ["CMD", args...], ["CMD-SHELL", "script"] or ["NONE"].
	Test        []string `json:"test,omitempty" yaml:"test,omitempty"`
	Interval    Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	Timeout     Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	Retries     int      `json:"retries,omitempty" yaml:"retries,omitempty"`
	StartPeriod Duration `json:"start_period,omitempty" yaml:"start_period,omitempty"`
	Disable     bool     `json:"disable,omitempty" yaml:"disable,omitempty"`
}

// Network is one network interface.
type Network struct {
	Name     string `json:"name,omitempty" yaml:"name,omitempty"`     // net0, eth0 ...
	Type     string `json:"type,omitempty" yaml:"type,omitempty"`     // LXC: none | veth
	Bridge   string `json:"bridge,omitempty" yaml:"bridge,omitempty"` // lxcbr0, vmbr0
	Model    string `json:"model,omitempty" yaml:"model,omitempty"`   // QEMU: virtio, e1000 ...
	IP       string `json:"ip,omitempty" yaml:"ip,omitempty"`         // "dhcp" or CIDR
	Gateway  string `json:"gateway,omitempty" yaml:"gateway,omitempty"`
	IP6      string `json:"ip6,omitempty" yaml:"ip6,omitempty"` // "dhcp", "auto" or CIDR
	Gateway6 string `json:"gateway6,omitempty" yaml:"gateway6,omitempty"`
	VLAN     int    `json:"vlan,omitempty" yaml:"vlan,omitempty"`
	Firewall bool   `json:"firewall,omitempty" yaml:"firewall,omitempty"`
	MTU      int    `json:"mtu,omitempty" yaml:"mtu,omitempty"`
	HWAddr   string `json:"hwaddr,omitempty" yaml:"hwaddr,omitempty"`
}

// Mount is a bind or tmpfs mount (Compose short "src:dst[:ro]" or long form).
type Mount struct {
	Type     string   `json:"type,omitempty" yaml:"type,omitempty"` // bind | tmpfs
	Source   string   `json:"source,omitempty" yaml:"source,omitempty"`
	Target   string   `json:"target" yaml:"target"`
	ReadOnly bool     `json:"read_only,omitempty" yaml:"read_only,omitempty"`
	Options  []string `json:"options,omitempty" yaml:"options,omitempty"`
}

// Template says how an LXC container's root filesystem is made.
type Template struct {
	// Type is busybox | download | local | oci.
	Type    string `json:"type" yaml:"type"`
	Dist    string `json:"dist,omitempty" yaml:"dist,omitempty"`       // download
	Release string `json:"release,omitempty" yaml:"release,omitempty"` // download
	Arch    string `json:"arch,omitempty" yaml:"arch,omitempty"`       // download
	Rootfs  string `json:"rootfs,omitempty" yaml:"rootfs,omitempty"`   // local: rootfs tarball
	Meta    string `json:"meta,omitempty" yaml:"meta,omitempty"`       // local: metadata tarball
	Image   string `json:"image,omitempty" yaml:"image,omitempty"`     // oci: "path/to/layout:tag"
}

// Disk is a Proxmox disk or container root filesystem.
type Disk struct {
	Slot    string   `json:"slot,omitempty" yaml:"slot,omitempty"` // scsi0, virtio1, mp0 ...
	Storage string   `json:"storage,omitempty" yaml:"storage,omitempty"`
	Size    ByteSize `json:"size,omitempty" yaml:"size,omitempty"`
	Path    string   `json:"path,omitempty" yaml:"path,omitempty"` // mount point inside a CT
	Options string   `json:"options,omitempty" yaml:"options,omitempty"`
}

// Clone makes a Proxmox guest from a template guest.
type Clone struct {
	Template string `json:"template" yaml:"template"` // template name or VMID
	Full     *bool  `json:"full,omitempty" yaml:"full,omitempty"`
	Storage  string `json:"storage,omitempty" yaml:"storage,omitempty"`
}

// CloudInit configures a cloned QEMU VM on first boot.
type CloudInit struct {
	User         string   `json:"user,omitempty" yaml:"user,omitempty"`
	Password     Secret   `json:"password,omitempty" yaml:"password,omitempty"`
	SSHKeys      []string `json:"ssh_keys,omitempty" yaml:"ssh_keys,omitempty"`
	Nameserver   string   `json:"nameserver,omitempty" yaml:"nameserver,omitempty"`
	Searchdomain string   `json:"searchdomain,omitempty" yaml:"searchdomain,omitempty"`
	Upgrade      *bool    `json:"upgrade,omitempty" yaml:"upgrade,omitempty"` // VM: ciupgrade
}
