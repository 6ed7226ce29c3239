#!/bin/sh
# demo.sh BERTH: the quickstart. Prepares the crun instance's root
# filesystem from busybox-static (offline), then validates the stack and
# prints its fully resolved form. The driver work makes this bring the
# stack up for real.
set -eu
berth=${1:?usage: demo.sh PATH-TO-BERTH}
case $berth in /*) ;; *) berth=$(pwd)/$berth ;; esac
here=$(cd "$(dirname "$0")" && pwd)

sh "$here/mkrootfs.sh" "$here/rootfs/busybox"
echo "== berth validate"
"$berth" -f "$here/quickstart.yaml" validate
echo "== berth config"
"$berth" -f "$here/quickstart.yaml" config
