#!/usr/bin/env bash
# `make demo`: brings examples/quickstart.yaml up for real (an LXC container
# and a crun container behind a health-gated dependency), shows `berth ps`,
# changes db's memory limit and shows the in-place update plan and its
# apply (same init PID before and after), then `berth down` and checks that
# nothing is left: no container, no lxcpath entry, no bridge, no state.
# Needs root; everything lives in a throwaway directory.
set -euo pipefail
berth=$(realpath "${1:-bin/berth}")
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (LXC and crun containers need it): sudo make demo" >&2
  exit 1
fi
demo=$(mktemp -d /tmp/berth-demo.XXXXXX)
export BERTH_LXCPATH=$demo/lxc BERTH_OCI_ROOT=$demo/oci BERTH_STATE_DIR=$demo/state
export QUICKSTART_ROOTFS=$demo/rootfs BERTH_PROGRESS=plain
stack=examples/quickstart.yaml
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

examples/mkrootfs.sh "$QUICKSTART_ROOTFS" >/dev/null
b up --yes
b ps

pid_before=$(lxc-info -P "$BERTH_LXCPATH" -n quickstart-db -pH)
echo
echo "# db's memory limit: 256M -> 512M (DB_MEMORY, interpolated in the stack file)"
export DB_MEMORY=512M
b plan
b up --yes
pid_after=$(lxc-info -P "$BERTH_LXCPATH" -n quickstart-db -pH)
limit=$(lxc-cgroup -P "$BERTH_LXCPATH" -n quickstart-db memory.limit_in_bytes 2>/dev/null ||
        lxc-cgroup -P "$BERTH_LXCPATH" -n quickstart-db memory.max)
echo
echo "db init pid before/after the update: $pid_before / $pid_after; live memory limit: $(echo $limit)"
[ "$pid_before" = "$pid_after" ] || { echo "demo: the update restarted db" >&2; exit 1; }

b down --yes
left=""
[ -z "$(lxc-ls -P "$BERTH_LXCPATH" -1)" ] || left+=" containers"
[ -z "$(ls -A "$BERTH_LXCPATH" 2>/dev/null)" ] || left+=" lxcpath-entries($(ls -A "$BERTH_LXCPATH"))"
[ ! -e /sys/class/net/berthqs0 ] || left+=" bridge"
[ -z "$(find "$BERTH_STATE_DIR" -type f ! -name '*.lock' 2>/dev/null)" ] || left+=" state($(find "$BERTH_STATE_DIR" -type f ! -name '*.lock'))"
if [ -n "$left" ]; then
  echo "demo: berth down left:$left" >&2
  exit 1
fi
echo
echo "berth down left nothing behind: no container, no lxcpath entry, no bridge, no state."
