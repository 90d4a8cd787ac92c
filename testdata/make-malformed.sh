#!/bin/sh
# Builds the deliberately malformed cases from the captured real ones (run after capture.sh):
#   testdata/proc/malformed/step0    from proc/hybrid-host/step0
#   testdata/cgroup/malformed/step0  from cgroup/hybrid-dd/step0
# Each edit is one kind of damage a collector must survive (truncation, garbage, missing lines).
set -eu
T=$(pwd)/testdata
P=$T/proc/malformed/step0
rm -rf "$T/proc/malformed"; mkdir -p "$P"; cp -r "$T/proc/hybrid-host/step0/." "$P/"; rm -f "$P/expected.json"
sed -i 's/^cpu  .*/cpu  16832 0/; s/^ctxt .*/ctxt abc/' "$P/stat"              # truncated cpu line, garbage ctxt
printf '   8       0 sdz 1 2\n' >>"$P/diskstats"                                  # truncated diskstats line
sed -i 's/^\( *eth0: *\)[0-9]*/\1x1y/' "$P/net/dev"                               # garbage counter
sed -i '/^MemAvailable:/d' "$P/meminfo"                                           # missing line
head -n 10 "$T/proc/hybrid-host/step0/vmstat" >"$P/vmstat"                        # truncated file
: >"$P/pressure/io"                                                               # empty file
printf 'some avg10=0.00\n' >"$P/pressure/cpu"                                     # missing total=

C=$T/cgroup/malformed/step0
rm -rf "$T/cgroup/malformed"; mkdir -p "$C"; cp -r "$T/cgroup/hybrid-dd/step0/." "$C/"; rm -f "$C/expected.json"
G=$C/sys/fs/cgroup
sed -i 's/^usage_usec .*/usage_usec banana/' "$G/unified/strata-capture/cpu.stat"
printf 'total_pgfault\ntotal_rss 12x\n' >"$G/memory/strata-capture/memory.stat"
printf '254:0 Write\n' >"$G/blkio/strata-capture/blkio.throttle.io_serviced_recursive"
: >"$G/unified/strata-capture/cpu.pressure"
echo "built $T/proc/malformed and $T/cgroup/malformed"

# Pure v1 view of the same real capture: the cgroup2 mount line and the unified tree removed, so the
# collector takes the v1-only path (cpuacct.usage + cpuacct.stat for CPU, no PSI).
for step in step0 step1; do
  V=$T/cgroup/hybrid-dd-as-v1/$step
  rm -rf "$V"; mkdir -p "$V"; cp -r "$T/cgroup/hybrid-dd/$step/." "$V/"
  rm -f "$V/expected.json"
  rm -rf "$V/sys/fs/cgroup/unified"
  sed -i '/ - cgroup2 /d' "$V/proc/self/mountinfo"
done
echo "built $T/cgroup/hybrid-dd-as-v1"
