#!/bin/sh
# Builds the deliberately malformed cases from the captured real ones (run after capture.sh):
#   testdata/proc/malformed/step0    from proc/hybrid-host/step0
#   testdata/cgroup/malformed/step0  from cgroup/hybrid-dd/step0
# Each edit is one kind of damage a collector must survive (truncation, garbage, missing lines).
set -eu
T=$(pwd)/testdata
P=$T/proc/malformed/step0
rm -rf "$T/proc/malformed"; mkdir -p "$P"; cp -r "$T/proc/hybrid-host/step0/." "$P/"
sed -i 's/^cpu  .*/cpu  16832 0/; s/^ctxt .*/ctxt abc/' "$P/stat"              # truncated cpu line, garbage ctxt
printf '   8       0 sdz 1 2\n' >>"$P/diskstats"                                  # truncated diskstats line
sed -i 's/^\( *eth0: *\)[0-9]*/\1x1y/' "$P/net/dev"                               # garbage counter
sed -i '/^MemAvailable:/d' "$P/meminfo"                                           # missing line
head -n 10 "$T/proc/hybrid-host/step0/vmstat" >"$P/vmstat"                        # truncated file
: >"$P/pressure/io"                                                               # empty file
printf 'some avg10=0.00\n' >"$P/pressure/cpu"                                     # missing total=

C=$T/cgroup/malformed/step0
rm -rf "$T/cgroup/malformed"; mkdir -p "$C"; cp -r "$T/cgroup/hybrid-dd/step0/." "$C/"
G=$C/sys/fs/cgroup
sed -i 's/^usage_usec .*/usage_usec banana/' "$G/unified/strata-capture/cpu.stat"
printf 'total_pgfault\ntotal_rss 12x\n' >"$G/memory/strata-capture/memory.stat"
printf '254:0 Write\n' >"$G/blkio/strata-capture/blkio.throttle.io_serviced_recursive"
: >"$G/unified/strata-capture/cpu.pressure"
echo "built $T/proc/malformed and $T/cgroup/malformed"
