package manifest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ByteSize is an amount of memory or disk in bytes, written in the stack file
// as "256M", "2G", "512k" or a plain number of bytes (binary units, as Compose).
type ByteSize int64

// Byte size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

// ParseByteSize parses "256M", "2g", "1.5G", "512MiB", "1024".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := ByteSize(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = KiB
		case 'm':
			mult = MiB
		case 'g':
			mult = GiB
		case 't':
			mult = TiB
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || t == "" {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit (k, M, G, T), e.g. 256M", s)
	}
	return ByteSize(f * float64(mult)), nil
}

// String renders the size in the largest unit that divides it: 256M, 2G.
func (b ByteSize) String() string {
	for _, u := range []struct {
		n ByteSize
		s string
	}{{TiB, "T"}, {GiB, "G"}, {MiB, "M"}, {KiB, "K"}} {
		if b != 0 && b%u.n == 0 {
			return strconv.FormatInt(int64(b/u.n), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MiB returns the size in whole mebibytes, rounded up (Proxmox units).
func (b ByteSize) MiB() int64 { return int64((b + MiB - 1) / MiB) }

func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }
func (b ByteSize) MarshalYAML() (any, error)    { return b.String(), nil }

func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n int64
		if err := json.Unmarshal(data, &n); err != nil {
			return err
		}
		*b = ByteSize(n)
		return nil
	}
	v, err := ParseByteSize(s)
	*b = v
	return err
}

// Duration is a Compose duration: "30s", "1m30s", "1h", "500ms".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }
func (d Duration) MarshalYAML() (any, error)    { return d.String(), nil }

func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// VMID is a Proxmox guest ID; 0 means "auto" (the next free ID).
type VMID int

func (v VMID) MarshalJSON() ([]byte, error) {
	if v == 0 {
		return json.Marshal("auto")
	}
	return json.Marshal(int(v))
}

func (v VMID) MarshalYAML() (any, error) {
	if v == 0 {
		return "auto", nil
	}
	return int(v), nil
}

func (v *VMID) UnmarshalJSON(data []byte) error {
	if string(data) == `"auto"` {
		*v = 0
		return nil
	}
	var n int
	if err := json.Unmarshal(data, &n); err != nil {
		return err
	}
	*v = VMID(n)
	return nil
}

// Secret holds a credential. It never renders: JSON, YAML, fmt and logs all
// see a mask, so a secret cannot leak into output, plans or state files.
// Drivers read the value with Reveal.
type Secret string

// Mask is what every rendering of a non-empty Secret shows.
const Mask = "********"

// Reveal returns the secret value, for the one call that needs it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Mask
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
func (s Secret) MarshalYAML() (any, error)    { return s.String(), nil }

// UnmarshalYAML reads "256M", "2G" or a plain number of bytes.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a value such as 256M", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// UnmarshalYAML reads a duration such as "30s" or "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: %q is not a duration: want e.g. 30s, 1m30s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML reads a VMID number or "auto" (0).
func (v *VMID) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "auto" {
		*v = 0
		return nil
	}
	id, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: vmid %q: want a number or auto", n.Line, n.Value)
	}
	*v = VMID(id)
	return nil
}
