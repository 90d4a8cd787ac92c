#!/bin/sh
# Captures real kernel files from this machine into testdata/ for the host and cgroup unit tests.
# Run as root from the repo root: sh testdata/capture.sh
#   testdata/proc/<case>/step{0,1}/   /proc/{stat,vmstat,meminfo,diskstats,net/dev,pressure/*}, 1 s apart
#   testdata/cgroup/<case>/step{0,1}/ a mirror of the files the cgroup collector reads, rooted like the
#       host: proc/self/mountinfo, proc/<pid>/net/dev, sys/dev/block/*/uevent, sys/fs/cgroup/<ctrl>/<cg>/*
# The cgroup case is a real cgroup (v1 cpu,cpuacct,memory,blkio,pids + the v2 unified hierarchy) with a
# child doing CPU work and direct 4K writes. expected.json files are written by the unit tests'
# `UPDATE_EXPECTED=1` mode and then reviewed by hand.
set -eu
HOSTCASE=${HOSTCASE:-hybrid-host}
CGCASE=${CGCASE:-hybrid-dd}
OUT=$(pwd)/testdata
[ "$(id -u)" = 0 ] || { echo "run as root (creates cgroups)" >&2; exit 1; }

copy_proc() { # $1 = destination dir
  mkdir -p "$1/net" "$1/pressure"
  for f in stat vmstat meminfo diskstats; do cat /proc/$f >"$1/$f"; done
  cat /proc/net/dev >"$1/net/dev"
  for r in cpu io memory; do cat /proc/pressure/$r >"$1/pressure/$r" 2>/dev/null || true; done
}

rm -rf "$OUT/proc/$HOSTCASE"
copy_proc "$OUT/proc/$HOSTCASE/step0"
sleep 1
copy_proc "$OUT/proc/$HOSTCASE/step1"

# ---- cgroup: a real hybrid cgroup with a worker ----
CG=strata-capture
V1="cpu cpuacct memory blkio pids"
for c in $V1; do mkdir -p /sys/fs/cgroup/$c/$CG; done
[ -d /sys/fs/cgroup/unified ] && mkdir -p /sys/fs/cgroup/unified/$CG
WORK=$(mktemp -d /var/tmp/strata-capture.XXXXXX)
# Kernels >= 6.9 only account v1 blkio.throttle.* once a throttle rule exists on the device's queue
# ("Total 0" otherwise): set a limit no workload reaches on the device under $WORK.
DEV=$(stat -c '%Hd:%Ld' "$WORK")
echo "$DEV 1000000000" >/sys/fs/cgroup/blkio/$CG/blkio.throttle.write_iops_device
# The worker puts itself into the cgroups before it starts working, so its children are inside too.
sh -c '
  for c in '"$V1"'; do echo $$ >/sys/fs/cgroup/$c/'"$CG"'/cgroup.procs; done
  [ -d /sys/fs/cgroup/unified ] && echo $$ >/sys/fs/cgroup/unified/'"$CG"'/cgroup.procs
  while :; do
    dd if=/dev/zero of='"$WORK"'/f bs=4k count=200 oflag=direct 2>/dev/null
    i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done
  done' &
WORKER=$!
cleanup() {
  kill $WORKER 2>/dev/null || true
  sleep 0.3
  # kill children left in the cgroup (dd), then remove the cgroups
  for p in $(cat /sys/fs/cgroup/cpu/$CG/cgroup.procs 2>/dev/null); do kill $p 2>/dev/null || true; done
  sleep 0.3
  for c in $V1 unified; do rmdir /sys/fs/cgroup/$c/$CG 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
sleep 1

copy_cg() { # $1 = destination dir
  d=$1
  mkdir -p "$d/proc/self"
  cat /proc/self/mountinfo >"$d/proc/self/mountinfo"
  for c in $V1 unified; do
    src=/sys/fs/cgroup/$c/$CG
    [ -d "$src" ] || continue
    mkdir -p "$d/sys/fs/cgroup/$c/$CG"
    for f in "$src"/*; do
      [ -f "$f" ] && [ -r "$f" ] || continue
      cat "$f" >"$d/sys/fs/cgroup/$c/$CG/$(basename "$f")" 2>/dev/null || rm -f "$d/sys/fs/cgroup/$c/$CG/$(basename "$f")"
    done
  done
  pid=$(head -n1 /sys/fs/cgroup/cpu/$CG/cgroup.procs)
  mkdir -p "$d/proc/$pid/net"
  cat /proc/$pid/net/dev >"$d/proc/$pid/net/dev"
  for u in /sys/dev/block/*/uevent; do
    n=$(basename "$(dirname "$u")")
    mkdir -p "$d/sys/dev/block/$n"
    cat "$u" >"$d/sys/dev/block/$n/uevent"
  done
}
rm -rf "$OUT/cgroup/$CGCASE"
copy_cg "$OUT/cgroup/$CGCASE/step0"
sleep 1
copy_cg "$OUT/cgroup/$CGCASE/step1"
echo "captured $OUT/proc/$HOSTCASE and $OUT/cgroup/$CGCASE"
