#!/bin/sh
# strata in-guest agent: ships the guest's own raw /proc counters, and the raw cgroup v2 files of
# the guest's containers, to the host over a virtio-serial port, once per interval. POSIX sh;
# busybox is enough (no Node, no Python in the guest). The host side (collectors/guest/) parses
# the /proc files with the host layer's parsers and the cgroup files with the cgroup collector's.
#
# Usage: strata-guest-agent.sh [PORT] [INTERVAL_SECONDS]
#   PORT      the virtio-serial character device; default: the port named "strata.agent"
#             (found through /sys/class/virtio-ports/*/name, or /dev/virtio-ports/strata.agent
#             where udev made the link); "-" writes the records to standard output (tests)
#   INTERVAL  seconds between records (fractions allowed where `sleep` takes them); default 1
# Environment (all optional):
#   STRATA_CGROUP_ROOT     where the guest's cgroup2 hierarchy is mounted; default /sys/fs/cgroup.
#                          "off" (or a root without cgroup.controllers: cgroup v1) sends no cgroups
#   STRATA_CGROUP_INCLUDE  space-separated shell patterns of cgroup paths below the root to report,
#                          e.g. "/strata-test/*" (`*` also matches "/"); default: every cgroup
#                          that looks like a container (docker-*.scope, libpod-*.scope,
#                          cri-containerd-*.scope, crio-*.scope, 64-hex dirs under docker/ or
#                          kubepods/; not descended into) and every other non-root cgroup with
#                          processes in its cgroup.procs
#   STRATA_CGROUP_MAX      at most this many cgroups per record (default 32); the rest are
#                          counted in the record ("dropped N")
#   STRATA_CGROUP_DEPTH    how deep below the root to look (default 5; kubepods.slice/.../x.scope is 4)
#   STRATA_RECORDS         stop after this many records (tests); default: run forever
#
# Framing, version 1 (docs/vm.md). One record per interval, plain text, every line ends in \n:
#   STRATA-GUEST 1 <seq> <uptime seconds from /proc/uptime>
#   --- <file under /proc, e.g. stat, net/dev, pressure/cpu>
#   <the file's contents, verbatim>
#   ... more sections ...
#   --- cgroups                       (only when cgroup v2 is there)
#   root <cgroup root>
#   dropped <cgroups not sent because of STRATA_CGROUP_MAX>
#   <cgroup path below the root, one per line, e.g. /strata-test/busy>
#   --- cgroup<path>/<file>           (cpu.stat memory.stat memory.current memory.max io.stat
#   <the file's contents, verbatim>    cpu.pressure io.pressure memory.pressure, where readable)
#   STRATA-END <seq>
# /proc and cgroup files never contain lines starting with "--- " or "STRATA-", so no escaping is
# needed. The host drops a record that is cut short (a new header before STRATA-END) and resyncs
# on the next header, so a restart of either side costs at most one record.
set -u

PORT=${1:-}
INTERVAL=${2:-1}
NAME=strata.agent
FILES="stat vmstat meminfo diskstats net/dev pressure/cpu pressure/io pressure/memory"
CG_ROOT=${STRATA_CGROUP_ROOT:-/sys/fs/cgroup}
CG_ROOT=${CG_ROOT%/}
CG_INCLUDE=${STRATA_CGROUP_INCLUDE:-}
CG_MAX=${STRATA_CGROUP_MAX:-32}
CG_DEPTH=${STRATA_CGROUP_DEPTH:-5}
CG_FILES="cpu.stat memory.stat memory.current memory.max io.stat cpu.pressure io.pressure memory.pressure"
RECORDS=${STRATA_RECORDS:-0}
NL='
'

find_port() {
  for d in /sys/class/virtio-ports/*; do
    [ -r "$d/name" ] || continue
    if [ "$(cat "$d/name")" = "$NAME" ]; then
      echo "/dev/${d##*/}"
      return 0
    fi
  done
  if [ -e "/dev/virtio-ports/$NAME" ]; then
    echo "/dev/virtio-ports/$NAME"
    return 0
  fi
  return 1
}

# Sets CG_LIST (newline-terminated paths below CG_ROOT), CG_DROPPED. Breadth-first with shell
# globs (no find, no fork): depth 1 is "$CG_ROOT"/*/, depth 2 "$CG_ROOT"/*/*/, and so on.
cg_scan() {
  CG_LIST=
  CG_DROPPED=0
  cg_n=0
  cg_skip=$NL # containers already reported: their sub-cgroups are their own business
  cg_pat=/*
  cg_depth=1
  while [ "$cg_depth" -le "$CG_DEPTH" ]; do
    for d in "$CG_ROOT"$cg_pat/; do
      [ -d "$d" ] || continue # the pattern itself when nothing matched
      rel=${d%/}
      rel=${rel#"$CG_ROOT"}
      case $rel in *"$NL"*) continue ;; esac
      inside=
      p=$rel
      while p=${p%/*}; [ -n "$p" ]; do
        case $cg_skip in *"$NL$p$NL"*) inside=1 && break ;; esac
      done
      [ -z "$inside" ] || continue
      b=${rel##*/}
      ctr=
      case $b in
        libpod-conmon-*|crio-conmon-*) ;;
        docker-*.scope|libpod-*.scope|cri-containerd-*.scope|crio-*.scope) ctr=1 ;;
        *) case $rel in */docker/*|*/kubepods/*) [ ${#b} -ne 64 ] || ctr=1 ;; esac ;;
      esac
      want=
      if [ -n "$CG_INCLUDE" ]; then
        set -f
        for g in $CG_INCLUDE; do
          case $rel in $g) want=1 && break ;; esac
        done
        set +f
      elif [ -n "$ctr" ]; then
        want=1
      else
        pid=
        { read -r pid <"$CG_ROOT$rel/cgroup.procs"; } 2>/dev/null
        [ -z "$pid" ] || want=1
      fi
      [ -n "$want" ] || continue
      [ -z "$ctr" ] || cg_skip="$cg_skip$rel$NL"
      if [ "$cg_n" -lt "$CG_MAX" ]; then
        CG_LIST="$CG_LIST$rel$NL"
        cg_n=$((cg_n + 1))
      else
        CG_DROPPED=$((CG_DROPPED + 1))
      fi
    done
    cg_pat="$cg_pat/*"
    cg_depth=$((cg_depth + 1))
  done
}

# Writes the cgroups section and one section per readable cgroup file, with a single awk for all
# of them (one process per record, however many cgroups).
cg_emit() {
  echo "--- cgroups"
  echo "root $CG_ROOT"
  echo "dropped $CG_DROPPED"
  printf '%s' "$CG_LIST"
  set --
  set -f
  old_ifs=$IFS
  IFS=$NL
  for p in $CG_LIST; do
    IFS=$old_ifs
    for f in $CG_FILES; do
      [ -r "$CG_ROOT$p/$f" ] && set -- "$@" "$CG_ROOT$p/$f"
    done
    IFS=$NL
  done
  IFS=$old_ifs
  set +f
  [ $# -gt 0 ] || return 0
  awk -v n=${#CG_ROOT} 'FNR == 1 { print "--- cgroup" substr(FILENAME, n + 1) } { print }' "$@" 2>/dev/null
}

CG_ON=
[ "$CG_ROOT" != off ] && [ -r "$CG_ROOT/cgroup.controllers" ] && CG_ON=1

while [ -z "$PORT" ]; do
  PORT=$(find_port) || {
    echo "strata-guest-agent: no virtio-serial port named $NAME yet; is virtio_console loaded?" >&2
    PORT=
    sleep 5
  }
done

TMP=${TMPDIR:-/tmp}/strata-guest-agent.$$
trap 'rm -f "$TMP"; exit 0' INT TERM
seq=0
while :; do
  seq=$((seq + 1))
  read -r up _ </proc/uptime
  {
    echo "STRATA-GUEST 1 $seq $up"
    for f in $FILES; do
      [ -r "/proc/$f" ] || continue
      echo "--- $f"
      cat "/proc/$f" 2>/dev/null
    done
    if [ -n "$CG_ON" ]; then
      cg_scan
      cg_emit
    fi
    echo "STRATA-END $seq"
  } >"$TMP"
  if [ "$PORT" = - ]; then
    cat "$TMP"
  else
    # The record is built first and written with one cat, so a slow guest never leaves half a
    # record on the wire. A virtio-serial write blocks while no host program is connected to the
    # port's socket: `timeout` drops the record instead, so the host never receives a stale backlog.
    timeout 2 cat "$TMP" >"$PORT" 2>/dev/null
  fi
  if [ "$RECORDS" -gt 0 ] && [ "$seq" -ge "$RECORDS" ]; then
    rm -f "$TMP"
    exit 0
  fi
  # Sleep what is left of the interval, so records keep the cadence however long building and
  # writing took (a busy or emulated guest needs a noticeable part of a second for it).
  read -r now _ </proc/uptime
  sleep "$(awk -v i="$INTERVAL" -v a="$up" -v b="$now" 'BEGIN { r = i - (b - a); if (r < 0.05) r = 0.05; printf "%.2f", r }')"
done
