package pvesim

import (
	"net"
	"regexp"
	"strings"
)

// Named formats of pve-common JSONSchema.pm @ f665029e (and qemu-server /
// pve-container where noted): regex and error text copied from the
// project's PVE reference data (api-subset.json named_formats). Formats not
// listed here are accepted unchecked (docs/pvesim.md lists them).
var (
	vmidRE      = regexp.MustCompile(`^[1-9][0-9]{2,8}$`)
	nodeRE      = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`)
	tagRE       = regexp.MustCompile(`(?i)^[a-z0-9_][a-z0-9_\-\+\.]*$`)
	urlencRE    = regexp.MustCompile(`^[-%a-zA-Z0-9_.!~*'()]*$`)
	configidRE  = regexp.MustCompile(`(?i)^[a-z][a-z0-9_-]+$`)
	storageIDRE = regexp.MustCompile(`(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$`)
	bridgeRE    = regexp.MustCompile(`^[-_.\w\d]+$`)
	macRE       = regexp.MustCompile(`(?i)^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$`)
	dnsNameRE   = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?$`)
	volumeIDRE  = regexp.MustCompile(`(?i)^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$`)
	diskSizeRE  = regexp.MustCompile(`^(\d+(\.\d+)?)([KMGT])?$`)
	poolIDRE    = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)
	realmRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\.\-_]+$`)
	listSplitRE = regexp.MustCompile(`[,; ]+`)
)

// splitList is PVE::Tools::split_list: items separated by [,; ] (and NUL).
func splitList(s string) []string {
	var out []string
	for _, p := range listSplitRE.Split(strings.ReplaceAll(s, "\x00", ","), -1) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkFormat returns PVE's error text for a value failing a named format
// ("" when valid). The caller prefixes "invalid format - ".
func checkFormat(format, v string) string {
	if base, ok := strings.CutSuffix(format, "-list"); ok && format != "pve-priv-list" {
		for _, item := range splitList(v) {
			if e := checkFormat(base, item); e != "" {
				return e
			}
		}
		return ""
	}
	if base, ok := strings.CutSuffix(format, "-opt"); ok {
		if v == "" {
			return ""
		}
		format = base
	}
	switch format {
	case "pve-vmid":
		if !vmidRE.MatchString(v) {
			return "value does not look like a valid VM ID"
		}
	case "pve-node":
		if !nodeRE.MatchString(v) {
			return "value does not look like a valid node name"
		}
	case "pve-tag":
		if !tagRE.MatchString(v) {
			return "invalid characters in tag"
		}
	case "urlencoded":
		if !urlencRE.MatchString(v) {
			return "invalid urlencoded string: " + v
		}
	case "pve-configid":
		if !configidRE.MatchString(v) {
			return "invalid configuration ID '" + v + "'"
		}
	case "pve-storage-id":
		if len(v) < 2 || !storageIDRE.MatchString(v) {
			return "storage ID '" + v + "' contains illegal characters"
		}
	case "pve-bridge-id":
		if !bridgeRE.MatchString(v) {
			return "invalid bridge ID '" + v + "'"
		}
	case "mac-addr":
		if !macRE.MatchString(v) {
			return "value does not look like a valid unicast MAC address"
		}
	case "dns-name":
		if !dnsNameRE.MatchString(v) {
			return "value does not look like a valid DNS name"
		}
	case "pve-volume-id":
		if !volumeIDRE.MatchString(v) {
			return "unable to parse volume ID '" + v + "'"
		}
	case "pve-volume-id-or-qm-path", "pve-volume-id-or-absolute-path":
		if v == "none" || v == "cdrom" || strings.HasPrefix(v, "/") {
			return ""
		}
		if !volumeIDRE.MatchString(v) {
			return "unable to parse volume ID '" + v + "'"
		}
	case "disk-size":
		if !diskSizeRE.MatchString(v) {
			return "unable to parse size '" + v + "'"
		}
	case "pve-poolid":
		if !poolIDRE.MatchString(v) {
			return "invalid pool ID '" + v + "'"
		}
	case "pve-realm":
		if !realmRE.MatchString(v) {
			return "value does not look like a valid realm"
		}
	case "ipv4":
		if ip := net.ParseIP(v); ip == nil || ip.To4() == nil {
			return "value does not look like a valid IPv4 address"
		}
	case "ipv6":
		if ip := net.ParseIP(v); ip == nil || ip.To4() != nil {
			return "value does not look like a valid IPv6 address"
		}
	case "CIDR":
		if _, _, err := net.ParseCIDR(v); err != nil {
			return "value does not look like a valid CIDR network"
		}
	case "pve-ipv4-config":
		if v == "dhcp" || v == "manual" {
			return ""
		}
		if ip, _, err := net.ParseCIDR(v); err != nil || ip.To4() == nil {
			return "value does not look like a valid IPv4 network configuration"
		}
	case "pve-ipv6-config":
		if v == "dhcp" || v == "manual" || v == "auto" {
			return ""
		}
		if ip, _, err := net.ParseCIDR(v); err != nil || ip.To4() != nil {
			return "value does not look like a valid IPv6 network configuration"
		}
	case "address":
		if net.ParseIP(v) == nil && !dnsNameRE.MatchString(v) {
			return "value does not look like a valid address: " + v
		}
	case "pve-qm-ipconfig":
		return checkQMIPConfig(v)
	case "pve-startup-order":
		if _, e := parsePropertyString(startupFormat, v, "startup"); e != "" {
			return strings.TrimSuffix(e, "\n")
		}
	case "pve-hotplug-features":
		if v == "0" || v == "1" {
			return ""
		}
		for _, f := range splitList(v) {
			if !hotplugFeatures[f] {
				return "invalid hotplug feature '" + f + "'"
			}
		}
	case "pve-qm-boot":
		if legacyBootRE.MatchString(v) {
			return ""
		}
		if _, e := parsePropertyString(bootFormat, v, "boot"); e != "" {
			return strings.TrimSuffix(e, "\n")
		}
	}
	return ""
}

// startupFormat is pve-guest-common's pve-startup-order property string.
var startupFormat = map[string]*Param{
	"order": {Name: "order", Type: "integer", Optional: true, DefaultKey: true, Min: ptr(0.0)},
	"up":    {Name: "up", Type: "integer", Optional: true, Min: ptr(0.0)},
	"down":  {Name: "down", Type: "integer", Optional: true, Min: ptr(0.0)},
}

// bootFormat is qemu-server's pve-qm-boot: "order=scsi0;ide2;net0".
var bootFormat = map[string]*Param{
	"order": {Name: "order", Type: "string", Optional: true, DefaultKey: true, Pattern: `(?:(?:ide|sata|scsi|virtio|net|efidisk|tpmstate|hostpci|usb)\d+;?)*`},
}

var (
	legacyBootRE    = regexp.MustCompile(`^[acdn]{1,4}$`)
	hotplugFeatures = map[string]bool{"network": true, "disk": true, "cpu": true, "memory": true, "usb": true, "cloudinit": true}
)

func ptr[T any](v T) *T { return &v }

// ipconfigFormat is qemu-server's pve-qm-ipconfig property string.
var ipconfigFormat = map[string]*Param{
	"ip":  {Name: "ip", Type: "string", Optional: true, Format: "pve-ipv4-config"},
	"gw":  {Name: "gw", Type: "string", Optional: true, Format: "ipv4"},
	"ip6": {Name: "ip6", Type: "string", Optional: true, Format: "pve-ipv6-config"},
	"gw6": {Name: "gw6", Type: "string", Optional: true, Format: "ipv6"},
}

func checkQMIPConfig(v string) string {
	if _, e := parsePropertyString(ipconfigFormat, v, "ipconfig"); e != "" {
		return strings.TrimSuffix(e, "\n")
	}
	return ""
}
