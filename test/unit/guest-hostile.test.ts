// The guest collector's bounds against a hostile guest: the agent end is a unix socket server in
// the test (as in guest-collector.test.ts) writing the captured records of testdata/guest/idle.stream
// with one part replaced by an attack (guest-hostile-frames.ts).
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GuestCollector, parseGuestConfig } from '../../collectors/guest/index.ts';
import type { Accumulator } from '../../collectors/types.ts';
import { registry } from '../../lib/metrics.ts';
import { hasControlChars } from '../../lib/terminal.ts';
import { EntitySample } from '../../schemas/sample.ts';
import { badLinesRecord, cardinalityRecord, ESCAPE_NAMES, netdev, record } from './guest-hostile-frames.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function guestWith(config: Record<string, unknown> = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-hostile-'));
  const socket = path.join(dir, 'agent.sock');
  const conns: net.Socket[] = [];
  const server = net.createServer((c) => conns.push(c));
  await new Promise<void>((r) => server.listen(socket, r));
  const c = new GuestCollector(
    parseGuestConfig({ agents: [{ vmId: 'evil', socket }], firstRecordWait: 0, ...config }),
  );
  cleanups.push(async () => {
    await c.shutdown();
    for (const s of conns) s.destroy();
    await new Promise((r) => server.close(r));
    await fs.rm(dir, { recursive: true, force: true });
  });
  const tick = async () => {
    const samples: EntitySample[] = [];
    const errors: string[] = [];
    const acc: Accumulator = {
      add: (s) => samples.push(EntitySample.parse(s)),
      error: (_s, key) => errors.push(key),
    };
    await c.gather(acc);
    return { samples, errors };
  };
  await tick();
  for (let i = 0; i < 200 && conns.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  /** Writes a record and ticks until the collector publishes it. */
  const send = async (text: string) => {
    conns[0]!.write(text);
    for (let i = 0; i < 300; i++) {
      const t = await tick();
      if (t.samples.length > 0) return t;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('the record never came out');
  };
  return { send };
}

async function metricSum(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  let sum = 0;
  for (const v of m?.values ?? [])
    if (Object.entries(labels).every(([k, l]) => v.labels[k] === l)) sum += v.value;
  return sum;
}

describe('guest collector against a hostile guest', () => {
  it('reports at most maxProblemsPerRecord of 60,000 bad lines and counts the rest', async () => {
    const g = await guestWith({ maxProblemsPerRecord: 5 });
    const before = await metricSum('strata_guest_problems_suppressed_total');
    const t = await g.send(badLinesRecord(1));
    expect(t.errors.length).toBe(5);
    // Keyed by guest and file, not by line: a guest moving its bad lines makes no new log keys.
    expect(new Set(t.errors)).toEqual(new Set(['guest:evil:diskstats']));
    expect((await metricSum('strata_guest_problems_suppressed_total')) - before).toBe(60_000 - 5);
    // The good part of the record is still published.
    expect(t.samples[0]!.counters.cpu_system_usec_total).toBe(235 * 10_000);
  });

  it('caps a guest inventing 3,500 interface names a record: per entity, per tick and in all', async () => {
    const g = await guestWith({ maxInstances: 64, maxNewInstancesPerTick: 50, maxInstanceNames: 120 });
    const before = await metricSum('strata_guest_instances_dropped_total', { kind: 'interface' });
    const seen = new Set<string>();
    for (let seq = 1; seq <= 4; seq++) {
      const t = await g.send(cardinalityRecord(seq));
      const ifs = Object.keys(t.samples[0]!.interfaces ?? {});
      const fresh = ifs.filter((n) => !seen.has(n));
      for (const n of ifs) seen.add(n);
      expect(ifs.length).toBeLessThanOrEqual(64);
      expect(fresh.length).toBeLessThanOrEqual(50);
    }
    // 50 + 50 + 19, then maxInstanceNames: the guest's disk (vda) is the 120th name.
    expect(seen.size).toBe(119);
    const dropped = (await metricSum('strata_guest_instances_dropped_total', { kind: 'interface' })) - before;
    expect(dropped).toBe(4 * 3500 - 119);
  });

  it('keeps the names it knows when a flood of new ones arrives', async () => {
    const g = await guestWith({ maxInstances: 64 });
    const known = netdev(3, (i) => `eth${i}`);
    await g.send(record(1, { 'net/dev': known }));
    const flood = netdev(3500, (i) => `new${i}`) + known.split('\n').slice(2).join('\n');
    const t = await g.send(record(2, { 'net/dev': flood }));
    const ifs = Object.keys(t.samples[0]!.interfaces ?? {});
    expect(ifs).toHaveLength(64);
    expect(ifs).toEqual(expect.arrayContaining(['eth0', 'eth1', 'eth2']));
  });

  it('refuses interface, device and container names with escape sequences or over maxNameLength', async () => {
    const g = await guestWith({ maxNameLength: 32 });
    const before = await metricSum('strata_guest_instances_dropped_total', { reason: 'bad_name' });
    const evilPath = `/${ESCAPE_NAMES[2]}x`;
    const t = await g.send(
      record(1, {
        'net/dev': netdev(
          ESCAPE_NAMES.length + 2,
          (i) => ESCAPE_NAMES[i] ?? (i % 2 ? 'eth0' : 'x'.repeat(33)),
        ),
        [`cgroup${evilPath}/cpu.stat`]: 'usage_usec 10\nuser_usec 5\nsystem_usec 5\n',
        'cgroup/ok/cpu.stat': 'usage_usec 10\nuser_usec 5\nsystem_usec 5\n',
        cgroups: `root /sys/fs/cgroup\ndropped 0\n${evilPath}\n/ok\n`,
      }),
    );
    const guest = t.samples.find((s) => s.entity.layer === 'guest')!;
    expect(Object.keys(guest.interfaces ?? {})).toEqual(['eth0']);
    const containers = t.samples.filter((s) => s.entity.layer === 'container');
    expect(containers.map((s) => s.entity.labels.cgroup_path)).toEqual(['/ok']);
    for (const s of t.samples) {
      for (const text of [s.entity.id, s.entity.name, ...Object.values(s.entity.labels)])
        expect(hasControlChars(text)).toBe(false);
    }
    const refused =
      (await metricSum('strata_guest_instances_dropped_total', { reason: 'bad_name' })) - before;
    expect(refused).toBe(ESCAPE_NAMES.length + 1 + 1); // the escape names, the long one, the cgroup
  });
});
