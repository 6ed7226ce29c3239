package oci

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/drivers/oci/internal/waiter"
)

// DetectHybridCgroups reports a hybrid cgroup host, where crun refuses to
// run: /sys/fs/cgroup is a tmpfs (cgroup v1 layout) and the cgroup2 mount
// at /sys/fs/cgroup/unified has controllers.
func DetectHybridCgroups() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		return false
	}
	data, err := os.ReadFile(waiter.UnifiedMount + "/cgroup.controllers")
	return err == nil && strings.TrimSpace(string(data)) != ""
}
