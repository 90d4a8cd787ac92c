// The cgroup collector's own counters and gauges at /metrics (the agent's health, not container
// metrics): shared by the collector (discovery) and the per-tick reader.
import { counter, gauge } from '../../lib/metrics.ts';

export const metrics = {
  entities: gauge('strata_collector_cgroup_entities', 'Containers (cgroups) read per tick'),
  vanished: counter(
    'strata_collector_cgroup_vanished_total',
    'Containers whose cgroup disappeared between discovery and read (not an error)',
  ),
  dropped: counter(
    'strata_collector_cgroup_entities_dropped_total',
    'Containers not read because maxEntities was reached',
  ),
  scans: counter('strata_collector_cgroup_discovery_scans_total', 'cgroup tree scans'),
  pressureReused: counter(
    'strata_collector_cgroup_pressure_reused_total',
    "PSI file reads saved (cpu/io/memory.pressure): the system-wide PSI total of that resource has not moved, so no cgroup's can have; last values sent",
    ['resource'],
  ),
  blkioReused: counter(
    'strata_collector_cgroup_blkio_reused_total',
    "v1 blkio file pairs not re-read: the root's blkio.throttle.io_serviced_recursive had not moved, so no cgroup's counters can have; last values sent",
  ),
  memoryStatReused: counter(
    'strata_collector_cgroup_memory_stat_reused_total',
    'memory.stat reads saved: container idle since the last read (CPU time and memory usage unchanged), last values sent',
  ),
  readErrors: counter(
    'strata_collector_cgroup_read_errors_total',
    'cgroup file reads or parses that failed (unreadable, garbage)',
    ['reason'],
  ),
  ioAccountingMissing: counter(
    'strata_collector_cgroup_io_accounting_missing_total',
    'Container samples sent without (io_accounting=unavailable) or with only some (partial) v1 blkio device counters: the kernel does not count that I/O (no blk-throttle rule)',
    ['io_accounting'],
  ),
};
