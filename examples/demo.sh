#!/usr/bin/env bash
# demo.sh BERTH: `make demo`. Brings examples/quickstart.yaml up for real (an
# LXC container and a crun container behind a health-gated dependency),
# shows `berth ps`, changes cache's memory limit and shows the in-place
# update plan and its apply (same init PID before and after), then runs
# `berth down` and checks that nothing is left: no container, no lxcpath
# entry, no bridge, no state. Needs root; containers, runtime state and
# berth's state live in a throwaway directory.
set -euo pipefail
berth=${1:?usage: demo.sh PATH-TO-BERTH}
case $berth in /*) ;; *) berth=$(pwd)/$berth ;; esac
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (LXC and crun containers need it): sudo make demo" >&2
  exit 1
fi
demo=$(mktemp -d /tmp/berth-demo.XXXXXX)
export BERTH_LXCPATH=$demo/lxc BERTH_OCI_ROOT=$demo/oci BERTH_STATE_DIR=$demo/state
export BERTH_PROGRESS=plain CACHE_MEMORY=64M
stack=$here/quickstart.yaml
b() { echo; echo "\$ berth $*"; "$berth" -f "$stack" "$@"; }
cleanup() {
  status=$?
  if [ $status -ne 0 ]; then
    echo "demo failed; cleaning up" >&2
    "$berth" -f "$stack" down --yes >/dev/null 2>&1 || true
  fi
  rm -rf "$demo"
  exit $status
}
trap cleanup EXIT

sh "$here/mkrootfs.sh" "$here/rootfs/busybox" >/dev/null
b validate
b up --yes
b ps
b exec web -- wget -q -O- http://127.0.0.1:8080/index.html

pid_before=$(lxc-info -P "$BERTH_LXCPATH" -n quickstart-cache -pH)
echo
echo "# cache's memory limit: 64M -> 128M (CACHE_MEMORY, interpolated in the stack file)"
export CACHE_MEMORY=128M
b plan
b up --yes
pid_after=$(lxc-info -P "$BERTH_LXCPATH" -n quickstart-cache -pH)
limit=$(lxc-cgroup -P "$BERTH_LXCPATH" -n quickstart-cache memory.limit_in_bytes 2>/dev/null ||
        lxc-cgroup -P "$BERTH_LXCPATH" -n quickstart-cache memory.max)
echo
echo "cache init pid before/after the update: $pid_before / $pid_after; live memory limit: $(echo $limit) bytes"
[ "$pid_before" = "$pid_after" ] || { echo "demo: the update restarted cache" >&2; exit 1; }

b down --yes
left=""
[ -z "$(lxc-ls -P "$BERTH_LXCPATH" -1)" ] || left+=" containers"
[ -z "$(ls -A "$BERTH_LXCPATH" 2>/dev/null)" ] || left+=" lxcpath-entries($(ls -A "$BERTH_LXCPATH"))"
[ ! -e /sys/class/net/berthqs0 ] || left+=" bridge"
[ -z "$(crun --root "$BERTH_OCI_ROOT/state/crun" list -q 2>/dev/null)" ] || left+=" crun-containers"
[ -z "$(ls -A "$BERTH_OCI_ROOT/bundles/crun" 2>/dev/null)" ] || left+=" crun-bundles"
! grep -q " $demo/" /proc/self/mountinfo || left+=" mounts"
[ -z "$(find "$BERTH_STATE_DIR" -type f ! -name '*.lock' 2>/dev/null)" ] || left+=" state($(find "$BERTH_STATE_DIR" -type f ! -name '*.lock'))"
if [ -n "$left" ]; then
  echo "demo: berth down left:$left" >&2
  exit 1
fi
echo
echo "berth down left nothing behind: no container, no lxcpath entry, no bridge, no crun bundle or mount, no state."
