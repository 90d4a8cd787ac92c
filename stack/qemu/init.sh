#!/bin/busybox sh
# /init of strata's test VM (busybox-static initramfs built by stack/qemu.ts). It mounts the
# pseudo filesystems, loads the virtio modules the Debian cloud kernel ships as modules (in
# dependency order: virtio_ring before virtio, the PCI transport before the drivers), starts the
# in-guest agent, then serves the control port so a test can run commands inside the guest.
#
# Control port "strata.ctl" (a second virtio-serial port): the host writes one line
#   <id> <shell command>
# and the guest answers, after the command finished,
#   STRATA-DONE <id> <exit status> <output byte count>\n<output bytes>
# Commands run one at a time; put `&` in the command to start something in the background.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp && mount -t tmpfs tmp /tmp
ip link set lo up 2>/dev/null

# /lib/modules/order is written by stack/qemu.ts from GUEST_MODULES (dependency order).
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" || echo "strata-init: insmod $m failed"
done

interval=1
for arg in $(cat /proc/cmdline); do
  case "$arg" in strata.interval=*) interval=${arg#strata.interval=} ;; esac
done

port_named() {
  for d in /sys/class/virtio-ports/*; do
    [ -r "$d/name" ] && [ "$(cat "$d/name")" = "$1" ] && echo "/dev/${d##*/}" && return 0
  done
  return 1
}

# Device nodes appear shortly after the driver binds.
i=0
while ! port_named strata.ctl >/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

/strata-guest-agent.sh "" "$interval" &
echo "strata-init: agent started (interval ${interval}s), disks: $(cat /proc/partitions | awk 'NR>2{print $4}' | tr '\n' ' ')"

CTL=$(port_named strata.ctl) || { echo "strata-init: no strata.ctl port"; while :; do sleep 3600; done; }
exec 3<>"$CTL"
echo "strata-init: ready"
while :; do
  if read -r id cmd <&3; then
    [ -n "$id" ] || continue
    sh -c "$cmd" >/tmp/ctl.out 2>&1 </dev/null
    rc=$?
    n=$(wc -c </tmp/ctl.out)
    { echo "STRATA-DONE $id $rc $n"; cat /tmp/ctl.out; } >&3
  else
    # EOF: no host program is connected to the control socket right now.
    sleep 0.2
  fi
done
