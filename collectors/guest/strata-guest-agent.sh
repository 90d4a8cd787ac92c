#!/bin/sh
# strata in-guest agent: ships the guest's own raw /proc counters to the host over a virtio-serial
# port, once per interval. POSIX sh; busybox is enough (no Node, no Python in the guest). The host
# side (collectors/guest/) parses the files with the same parsers as the host layer.
#
# Usage: strata-guest-agent.sh [PORT] [INTERVAL_SECONDS]
#   PORT      the virtio-serial character device; default: the port named "strata.agent"
#             (found through /sys/class/virtio-ports/*/name, or /dev/virtio-ports/strata.agent
#             where udev made the link)
#   INTERVAL  seconds between records (fractions allowed where `sleep` takes them); default 1
#
# Framing, version 1 (docs/vm.md). One record per interval, plain text, every line ends in \n:
#   STRATA-GUEST 1 <seq> <uptime seconds from /proc/uptime>
#   --- <file under /proc, e.g. stat, net/dev, pressure/cpu>
#   <the file's contents, verbatim>
#   ... more sections ...
#   STRATA-END <seq>
# /proc files never contain lines starting with "--- " or "STRATA-", so no escaping is needed. The
# host drops a record that is cut short (a new header before STRATA-END) and resyncs on the next
# header, so a restart of either side costs at most one record.
set -u

PORT=${1:-}
INTERVAL=${2:-1}
NAME=strata.agent
FILES="stat vmstat meminfo diskstats net/dev pressure/cpu pressure/io pressure/memory"

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
    echo "STRATA-END $seq"
  } >"$TMP"
  # The record is built first and written with one cat, so a slow guest never leaves half a
  # record on the wire. A virtio-serial write blocks while no host program is connected to the
  # port's socket: `timeout` drops the record instead, so the host never receives a stale backlog.
  timeout 2 cat "$TMP" >"$PORT" 2>/dev/null
  # Sleep what is left of the interval, so records keep the cadence however long building and
  # writing took (a busy or emulated guest needs a noticeable part of a second for it).
  read -r now _ </proc/uptime
  sleep "$(awk -v i="$INTERVAL" -v a="$up" -v b="$now" 'BEGIN { r = i - (b - a); if (r < 0.05) r = 0.05; printf "%.2f", r }')"
done
