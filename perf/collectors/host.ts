// Measures one host tick (read + parse) and the parse alone, in CPU µs: `npx tsx perf/collectors/host.ts`.

import { parseHostConfig } from '../../collectors/host/config.ts';
import { HostCollector } from '../../collectors/host/index.ts';

const c = new HostCollector(parseHostConfig({}), { node: { id: 'x', hostname: 'x', labels: {} } });
await c.start();
let n = 0;
let errs = 0;
const acc = {
  add: () => {
    n++;
  },
  error: (_s: string, k: string) => {
    errs++;
    console.log(k);
  },
};
for (let i = 0; i < 2000; i++) c.gatherSync(acc);
const N = 20000;
const t0 = process.cpuUsage();
const h0 = process.hrtime.bigint();
for (let i = 0; i < N; i++) c.gatherSync(acc);
const cpu = process.cpuUsage(t0);
const wall = Number(process.hrtime.bigint() - h0) / 1e3;
console.log(
  `host gather: ${((cpu.user + cpu.system) / N).toFixed(1)} µs CPU/tick (user ${(cpu.user / N).toFixed(1)}, sys ${(cpu.system / N).toFixed(1)}), wall ${(wall / N).toFixed(1)} µs, ${n} samples, errors ${errs}`,
);

// parse only
import { readFileSync } from 'node:fs';
import { procSampleFromFiles } from '../../collectors/procfs/parsers.ts';

const r = (p: string) => readFileSync(p, 'latin1');
const files = {
  stat: r('/proc/stat'),
  vmstat: r('/proc/vmstat'),
  meminfo: r('/proc/meminfo'),
  diskstats: r('/proc/diskstats'),
  netdev: r('/proc/net/dev'),
  pressure: { cpu: r('/proc/pressure/cpu'), io: r('/proc/pressure/io'), memory: r('/proc/pressure/memory') },
};
for (let i = 0; i < 5000; i++) procSampleFromFiles(files);
const t1 = process.cpuUsage();
for (let i = 0; i < N; i++) procSampleFromFiles(files);
const c1 = process.cpuUsage(t1);
console.log(`parse only: ${((c1.user + c1.system) / N).toFixed(1)} µs CPU/tick`);
await c.shutdown();
