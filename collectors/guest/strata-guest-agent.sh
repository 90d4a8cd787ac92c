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
#   STRATA_CGROUP_RESCAN   look for cgroups every this many records (default 5); in between the
#                          last list is sent again, less the cgroups that were removed
#   STRATA_RECORDS         stop after this many records (tests); default: run forever
#
# Framing, version 1 (docs/vm.md). One record per interval, plain text, every line ends in \n:
#   STRATA-GUEST 1 <seq> <uptime seconds from /proc/uptime>
#   --- <file under /proc, e.g. stat, net/dev, pressure/cpu>
#   <the file's contents, verbatim>
#   ... more sections ...
#   --- cgroup<path>/<file>           (only when cgroup v2 is there: cpu.stat memory.stat
#   <the file's contents, verbatim>    memory.current memory.max io.stat cpu.pressure io.pressure
#   ... one section per file ...       memory.pressure, where they exist; an empty file, e.g.
#                                      io.stat before any I/O, has its header)
#   --- cgroups
#   root <cgroup root>
#   dropped <cgroups not sent because of STRATA_CGROUP_MAX>
#   <cgroup path below the root, one per line, e.g. /strata-test/busy>
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
CG_RESCAN=${STRATA_CGROUP_RESCAN:-5}
[ "$CG_RESCAN" -ge 1 ] 2>/dev/null || CG_RESCAN=1
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

# Writes one section per cgroup file, then the cgroups section (the decoder keys sections by name,
# so the list may come last), all from one awk process (however
# many cgroups): awk reads each file with getline, so the shell neither forks per file nor builds
# an argument list. A file that cannot be opened (no such controller, or the cgroup was removed
# since the last scan) has no section; a cgroup none of whose files opened is left out of the list.
cg_emit() {
  printf '%s' "$CG_LIST" | awk -v root="$CG_ROOT" -v names="$CG_FILES" -v dropped="$CG_DROPPED" '
    BEGIN { n = split(names, f, " ") }
    $0 != "" {
      got = 0
      for (i = 1; i <= n; i++) {
        path = root $0 "/" f[i]
        r = getline line < path
        if (r < 0) continue
        got = 1
        print "--- cgroup" $0 "/" f[i]
        while (r > 0) { print line; r = getline line < path }
        close(path)
      }
      if (got) list = list $0 "\n"
    }
    END { printf "--- cgroups\nroot %s\ndropped %d\n%s", root, dropped, list }'
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
      # Globbing "*/" stats every entry of every cgroup directory (≈45 files each), once per
      # depth: the scan costs more than reading the files, so it runs every CG_RESCAN records.
      [ $(((seq - 1) % CG_RESCAN)) -eq 0 ] && cg_scan
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
