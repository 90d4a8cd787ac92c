#!/bin/sh
# Records a real noisy-neighbour tick sequence for the noisy-neighbor unit tests:
#   two containers on the stack's Docker engine (busybox image, vfs storage on the host's disk):
#   - nn-victim: light synchronous I/O, one 4K O_DIRECT write every 50 ms, all along;
#   - nn-antagonist: 8 loops of random 1 MiB O_DIRECT writes into a 256 MiB file, from T+WARM for
#     HEAVY s (4 KiB and 256 KiB writes at queue depth 4 were absorbed by this virtio disk without
#     raising anyone's stall; 1 MiB at depth 8 saturates its bandwidth, which hurts a neighbour);
#   the agent (host + cgroup collectors, 1 s ticks) writes every tick as NDJSON.
# Kernels >= 6.9 account v1 blkio.throttle.* only once a throttle rule exists on the device's
# queue, so both containers get a write-IOPS limit no workload reaches.
# Usage (repo root, root, stack up): sh testdata/processor/capture-noisy.sh OUT.ndjson [WARM HEAVY COOL]
# HEAVY=0 records a quiet run (the victim alone) of WARM + COOL seconds.
set -eu
OUT=$1
WARM=${2:-30}
HEAVY=${3:-30}
COOL=${4:-30}
: "${DOCKER_HOST:?set DOCKER_HOST (node bin/strata.js stack status prints it)}"
IMAGE=${STRATA_DOCKER_IMAGE:-strata/busybox}
DEV=/dev/$(lsblk -no PKNAME "$(findmnt -no SOURCE -T "$(docker info -f '{{.DockerRootDir}}')" | sed 's/\[.*//')" 2>/dev/null || true)
[ "$DEV" = /dev/ ] && DEV=$(findmnt -no SOURCE -T "$(docker info -f '{{.DockerRootDir}}')" | sed 's/\[.*//')
LIMIT="--device-write-iops $DEV:1000000000"
cleanup() { docker rm -f nn-victim nn-antagonist >/dev/null 2>&1 || true; [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
cleanup
docker run -d --name nn-victim $LIMIT "$IMAGE" sh -c \
  'while :; do dd if=/dev/zero of=/v bs=4k count=1 oflag=direct conv=notrunc 2>/dev/null; sleep 0.05; done' >/dev/null
STRATA_LOG_LEVEL=warn node bin/strata.js agent --output ndjson --interval 1s --collectors host,cgroup >"$OUT" &
AGENT=$!
sleep "$WARM"
if [ "$HEAVY" -gt 0 ]; then
  docker run -d --name nn-antagonist $LIMIT "$IMAGE" sh -c \
    'dd if=/dev/zero of=/a bs=1M count=256 2>/dev/null; for i in 1 2 3 4 5 6 7 8; do (while :; do dd if=/dev/zero of=/a bs=1M count=8 seek=$((RANDOM % 248)) oflag=direct conv=notrunc 2>/dev/null; done) & done; wait' >/dev/null
  sleep "$HEAVY"
  docker rm -f nn-antagonist >/dev/null
fi
sleep "$COOL"
kill "$AGENT"
wait "$AGENT" 2>/dev/null || true
echo "recorded $(wc -l <"$OUT") ticks into $OUT" >&2
