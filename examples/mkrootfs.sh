#!/bin/sh
# mkrootfs.sh DIR: builds a minimal root filesystem from busybox-static
# (/bin/busybox plus one symlink per applet, /etc/passwd and /etc/group)
# for the OCI backends' `image: dir:DIR` form. Works offline; needs the
# Debian package busybox-static. Idempotent.
set -eu
dir=${1:?usage: mkrootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "mkrootfs.sh: $bb missing: apt-get install -y busybox-static" >&2; exit 1; }
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/root" "$dir/var/www"
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
echo "rootfs ready: $dir"
