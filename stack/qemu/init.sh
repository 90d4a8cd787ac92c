#!/bin/busybox sh
# /init of strata's test VM (busybox-static initramfs built by stack/qemu.ts). It mounts the
# pseudo filesystems, loads the virtio modules the Debian cloud kernel ships as modules (in
# dependency order: virtio_ring before virtio, the PCI transport before the drivers), mounts
# cgroup v2 (or pure v1 with strata.cgv1=1) with two test cgroups, starts the in-guest agent,
# then serves the control port so a test can run commands inside the guest.
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
cgbusy=0
cgv1=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    strata.interval=*) interval=${arg#strata.interval=} ;;
    strata.cgbusy=*) cgbusy=${arg#strata.cgbusy=} ;;
    strata.cgv1=*) cgv1=${arg#strata.cgv1=} ;;
  esac
done

# Pure cgroup v2 with the cpu, memory, io and pids controllers, and two "containers" the in-guest
# agent reports (nested guest -> container): /strata-test/idle holds a sleeping process;
# /strata-test/busy holds a sleeping process too, or a busy loop with strata.cgbusy=1 on the
# kernel command line. A test can also move a loop into it: echo $$ > .../busy/cgroup.procs.
CG=/sys/fs/cgroup
if [ "$cgv1" = 1 ]; then
  # Pure cgroup v1 instead (strata.cgv1=1), laid out like Debian 9 / RHEL 7: a tmpfs on
  # /sys/fs/cgroup, one hierarchy per controller group, cpu and cpuacct symlinks to the co-mounted
  # one, and no cgroup2 mount at all. The same /strata-test/{busy,idle} cgroups in every hierarchy;
  # a test joins one by writing a pid to <hierarchy>/<cgroup>/cgroup.procs of each hierarchy
  # (awk '$3=="cgroup"{print $2}' /proc/mounts lists them).
  mount -t tmpfs -o mode=755 cgroup $CG
  for h in cpu,cpuacct memory blkio pids; do
    mkdir -p $CG/$h
    if mount -t cgroup -o $h cgroup $CG/$h; then
      mkdir -p $CG/$h/strata-test/busy $CG/$h/strata-test/idle
    else
      echo "strata-init: cannot mount cgroup v1 $h"
      rmdir $CG/$h
    fi
  done
  [ -d $CG/cpu,cpuacct ] && ln -s cpu,cpuacct $CG/cpu && ln -s cpu,cpuacct $CG/cpuacct
  cgjoin() { # <pid> <cgroup path>
    for d in $(awk '$3=="cgroup"{print $2}' /proc/mounts); do echo "$1" >"$d$2/cgroup.procs"; done
  }
  sleep 2147483647 &
  cgjoin $! /strata-test/idle
  if [ "$cgbusy" = 1 ]; then
    sh -c 'while :; do :; done' &
  else
    sleep 2147483647 &
  fi
  cgjoin $! /strata-test/busy
elif mount -t cgroup2 cgroup2 $CG; then
  echo "+cpu +memory +io +pids" >$CG/cgroup.subtree_control || echo "strata-init: cannot enable cgroup controllers"
  mkdir -p $CG/strata-test/busy $CG/strata-test/idle
  echo "+cpu +memory +io +pids" >$CG/strata-test/cgroup.subtree_control
  sh -c "echo \$\$ >$CG/strata-test/idle/cgroup.procs && exec sleep 2147483647" &
  if [ "$cgbusy" = 1 ]; then
    sh -c "echo \$\$ >$CG/strata-test/busy/cgroup.procs && while :; do :; done" &
  else
    sh -c "echo \$\$ >$CG/strata-test/busy/cgroup.procs && exec sleep 2147483647" &
  fi
else
  echo "strata-init: cannot mount cgroup2"
fi

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
