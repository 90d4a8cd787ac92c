#!/bin/sh
# Records a real intermittent noisy neighbour for the noisy-neighbor unit tests: the same two
# containers as capture-noisy.sh (nn-victim: one 4 KiB O_DIRECT write every 50 ms, all along), but
# nn-antagonist writes in BURSTS bursts of ON s (8 loops of random 1 MiB O_DIRECT writes) separated
# by OFF s of silence, like a backup or a compaction that runs in bursts. OFF is longer than the
# detector's resolve time (3 good windows of 5 s), so without an episode gap every burst would be an
# incident of its own.
# Usage (repo root, root, stack up):
#   sh testdata/processor/capture-noisy-bursty.sh OUT.ndjson [WARM ON OFF BURSTS COOL]
set -eu
OUT=$1
WARM=${2:-30}
ON=${3:-15}
OFF=${4:-25}
BURSTS=${5:-3}
COOL=${6:-30}
: "${DOCKER_HOST:?set DOCKER_HOST (node bin/strata.js stack status prints it)}"
IMAGE=${STRATA_DOCKER_IMAGE:-strata/busybox}
DEV=/dev/$(lsblk -no PKNAME "$(findmnt -no SOURCE -T "$(docker info -f '{{.DockerRootDir}}')" | sed 's/\[.*//')" 2>/dev/null || true)
[ "$DEV" = /dev/ ] && DEV=$(findmnt -no SOURCE -T "$(docker info -f '{{.DockerRootDir}}')" | sed 's/\[.*//')
# Kernels >= 6.9 account v1 blkio.throttle.* only once a throttle rule exists on the device's queue.
LIMIT="--device-write-iops $DEV:1000000000"
cleanup() { docker rm -f nn-victim nn-antagonist >/dev/null 2>&1 || true; [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
cleanup
docker run -d --name nn-victim $LIMIT "$IMAGE" sh -c \
  'while :; do dd if=/dev/zero of=/v bs=4k count=1 oflag=direct conv=notrunc 2>/dev/null; sleep 0.05; done' >/dev/null
STRATA_LOG_LEVEL=warn node bin/strata.js agent --output ndjson --interval 1s --collectors host,cgroup >"$OUT" &
AGENT=$!
sleep "$WARM"
docker run -d --name nn-antagonist $LIMIT -e ON="$ON" -e OFF="$OFF" -e BURSTS="$BURSTS" "$IMAGE" sh -c '
  dd if=/dev/zero of=/a bs=1M count=256 2>/dev/null
  b=0
  while [ $b -lt $BURSTS ]; do
    pids=
    for i in 1 2 3 4 5 6 7 8; do
      (while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) &
      pids="$pids $!"
    done
    sleep $ON
    kill $pids
    wait
    b=$((b + 1))
    [ $b -lt $BURSTS ] && sleep $OFF
  done
  sleep 3600' >/dev/null
sleep $((ON * BURSTS + OFF * (BURSTS - 1) + 2))
docker rm -f nn-antagonist >/dev/null
sleep "$COOL"
kill "$AGENT"
wait "$AGENT" 2>/dev/null || true
echo "recorded $(wc -l <"$OUT") ticks into $OUT" >&2
