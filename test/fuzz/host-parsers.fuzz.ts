// The /proc parsers (collectors/procfs/parsers.ts) on mutated captures of a real host's files and on
// arbitrary text: they never throw, every number they return is finite, counters are ≥ 0 (the wire
// format refuses a whole message otherwise), and metric names are the wire format's.
import fc from 'fast-check';
import {
  parseDiskstats,
  parseMeminfo,
  parseNetDev,
  parsePressure,
  parseProcStat,
  parseVmstat,
  procSampleFromFiles,
} from '../../collectors/procfs/parsers.ts';
import { capturedFiles, checkMetricNames, checkNumbers, type FuzzTarget, hostileText } from './harness.ts';

const proc = (name: string) => hostileText(capturedFiles('proc', (p) => p.endsWith(`/${name}`)));

function checkParts(parts: {
  counters: Record<string, number>;
  gauges?: Record<string, number>;
  devices?: Record<string, { counters: Record<string, number>; gauges?: Record<string, number> }>;
  interfaces?: Record<string, { counters: Record<string, number>; gauges?: Record<string, number> }>;
}): void {
  checkNumbers(parts);
  checkMetricNames(parts.counters, 'counters');
  checkMetricNames(parts.gauges, 'gauges');
  for (const group of [parts.devices, parts.interfaces]) {
    for (const [name, d] of Object.entries(group ?? {})) {
      if (name === '') throw new Error('an empty device or interface name');
      checkMetricNames(d.counters, `${name}.counters`);
      checkMetricNames(d.gauges, `${name}.gauges`);
    }
  }
}

export const targets: FuzzTarget[] = [
  {
    name: 'proc: stat',
    property: () => fc.property(proc('stat'), (t) => checkParts(parseProcStat(t))),
  },
  {
    name: 'proc: vmstat and meminfo',
    property: () =>
      fc.property(proc('vmstat'), proc('meminfo'), (v, m) =>
        checkParts({ counters: parseVmstat(v), gauges: parseMeminfo(m) }),
      ),
  },
  {
    name: 'proc: diskstats',
    property: () =>
      fc.property(proc('diskstats'), (t) =>
        checkParts({ counters: {}, devices: parseDiskstats(t, [], () => true) }),
      ),
  },
  {
    name: 'proc: net/dev',
    property: () =>
      fc.property(proc('dev'), (t) =>
        checkParts({ counters: {}, interfaces: parseNetDev(t, [], () => true) }),
      ),
  },
  {
    name: 'proc: pressure',
    property: () =>
      fc.property(proc('io'), fc.constantFrom('cpu', 'io', 'memory' as const), (t, r) =>
        checkParts(parsePressure(t, r)),
      ),
  },
  {
    name: 'proc: a whole sample',
    property: () =>
      fc.property(
        fc.record({
          stat: proc('stat'),
          vmstat: proc('vmstat'),
          meminfo: proc('meminfo'),
          diskstats: proc('diskstats'),
          netdev: proc('dev'),
        }),
        (files) => {
          const parts = procSampleFromFiles(files);
          checkParts(parts);
          for (const p of parts.problems)
            if (typeof p !== 'string' || p === '') throw new Error('bad problem line');
        },
      ),
  },
];
