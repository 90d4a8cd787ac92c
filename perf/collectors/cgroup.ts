// Measures the cgroup collector's per-tick CPU cost per container on real cgroups:
//   npx tsx perf/collectors/cgroup.ts [count=50]   (root; creates and removes /strata-bench-PID/*; PRESSURE=0 skips PSI;
//   KERNEL_RELEASE=6.1.0 reads v1 blkio as that kernel would need: the rule files at each discovery)
// Each cgroup gets one sleeping process. Prints CPU µs per entity-sample (user+system).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { CgroupCollector, parseCgroupConfig } from '../../collectors/cgroup/index.ts';

const count = Number(process.argv[2] ?? 50);
const parent = `strata-bench-${process.pid}`;
const make = () =>
  new CgroupCollector(
    parseCgroupConfig({
      include: [`/${parent}/*`],
      docker: { enabled: false },
      pressure: process.env.PRESSURE !== '0',
    }),
    {
      nodeId: 'bench',
      ...(process.env.KERNEL_RELEASE ? { kernelRelease: process.env.KERNEL_RELEASE } : {}),
    },
  );
const probe = make();
const l = probe.layout;
const roots =
  l.mode === 'v2'
    ? [l.v2!]
    : [...['cpu', 'cpuacct', 'memory', 'blkio'].map((c) => l.v1.get(c)!), ...(l.v2 ? [l.v2] : [])];
const dirs = [...new Set(roots)].map((r) => `${r}/${parent}`);
const pids: number[] = [];
try {
  for (const d of dirs) for (let i = 0; i < count; i++) mkdirSync(`${d}/c${i}`, { recursive: true });
  for (let i = 0; i < count; i++) {
    const p = spawn('sleep', ['300'], { stdio: 'ignore' });
    pids.push(p.pid!);
    for (const d of dirs) writeFileSync(`${d}/c${i}/cgroup.procs`, String(p.pid));
  }
  const c = make();
  await c.start();
  let n = 0;
  const acc = { add: () => void n++, error: () => {} };
  await c.gather(acc); // discovery
  for (let i = 0; i < 200; i++) c.gatherSync(acc);
  n = 0;
  const ticks = 1000;
  const t0 = process.cpuUsage();
  for (let i = 0; i < ticks; i++) c.gatherSync(acc);
  const cpu = process.cpuUsage(t0);
  const per = (cpu.user + cpu.system) / n;
  console.log(
    `${l.mode}: ${c.size} cgroups, ${n} entity-samples: ${per.toFixed(1)} µs CPU per entity-sample ` +
      `(user ${(cpu.user / n).toFixed(1)}, system ${(cpu.system / n).toFixed(1)})`,
  );
  const t1 = process.cpuUsage();
  for (let i = 0; i < 20; i++) c.discover();
  const d = process.cpuUsage(t1);
  console.log(`discovery scan: ${((d.user + d.system) / 20 / 1000).toFixed(2)} ms CPU`);
  await c.shutdown();
} finally {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const d of dirs) {
    for (let i = 0; i < count; i++) {
      try {
        if (readFileSync(`${d}/c${i}/cgroup.procs`, 'utf8').trim() === '') rmdirSync(`${d}/c${i}`);
      } catch {}
    }
    try {
      rmdirSync(d);
    } catch {}
  }
}
