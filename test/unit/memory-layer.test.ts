// The memory layer's collector side on files captured on this machine (testdata/ksm/capture.ts:
// two TCG test VMs booted from the same kernel and initramfs, KSM switched on): the host's KSM
// attributes (read through HOST_SYS), ksmd's stat, one VM's smaps_rollup and ksm_stat, and the QMP
// balloon and memory-size replies.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HostCollector, parseHostConfig } from '../../collectors/host/index.ts';
import { ksmdUsec, ksmMetrics, parseKsmValue } from '../../collectors/host/ksm.ts';
import { parseKernelPageSize } from '../../collectors/procfs/pagesize.ts';
import {
  balloonActual,
  configuredMemory,
  parseKsmStat,
  parseSmapsRollup,
} from '../../collectors/vm/parsers.ts';
import { EntitySample } from '../../schemas/sample.ts';

const KSM = path.join(import.meta.dirname, '../../testdata/ksm');
const STEP0 = path.join(import.meta.dirname, '../../testdata/proc/hybrid-host/step0');
const rd = (f: string) => readFileSync(path.join(KSM, f), 'latin1');
const PAGE = 4096;

/** A HOST_PROC (captured /proc + ksmd's stat as pid 38) and a HOST_SYS holding one KSM capture. */
function hostDirs(ksmCapture: string) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'strata-ksm-'));
  const proc = path.join(root, 'proc');
  cpSync(STEP0, proc, { recursive: true });
  mkdirSync(path.join(proc, '38'));
  cpSync(path.join(KSM, 'ksmd-stat'), path.join(proc, '38', 'stat'));
  cpSync(path.join(KSM, 'ksmd-comm'), path.join(proc, '38', 'comm'));
  const sys = path.join(root, 'sys');
  mkdirSync(path.join(sys, 'kernel', 'mm'), { recursive: true });
  symlinkSync(path.join(KSM, ksmCapture), path.join(sys, 'kernel', 'mm', 'ksm'));
  return { root, paths: { proc, sys, cgroup: path.join(sys, 'fs', 'cgroup') } };
}

async function hostTick(ksmCapture: string, config: Record<string, unknown> = {}) {
  const { root, paths } = hostDirs(ksmCapture);
  try {
    const c = new HostCollector(parseHostConfig(config), {
      node: { id: 'n', hostname: 'n', labels: {} },
      paths,
    });
    await c.start();
    const samples: EntitySample[] = [];
    const errors: string[] = [];
    await c.gather({ add: (s) => samples.push(EntitySample.parse(s)), error: (_s, k) => errors.push(k) });
    await c.shutdown();
    return { sample: samples[0]!, errors };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe('host KSM (HOST_SYS/kernel/mm/ksm)', () => {
  it('KSM merging two VMs: state and effect in bytes, full scans, ksmd CPU', async () => {
    const { sample, errors } = await hostTick('sys-merged');
    expect(errors).toEqual([]);
    expect(sample.gauges).toMatchObject({
      ksm_run: 1,
      ksm_shared_bytes: 4318 * PAGE,
      ksm_sharing_bytes: 17926 * PAGE, // 70.0 MiB not allocated
      ksm_unshared_bytes: 13737 * PAGE,
      ksm_volatile_bytes: 11059 * PAGE,
      ksm_general_profit_bytes: 69937664,
      ksm_zero_page_bytes: 0,
    });
    expect(sample.counters.ksm_full_scans_total).toBe(46);
    // ksmd: utime 0 + stime 262 ticks of 10 ms.
    expect(sample.counters.ksmd_cpu_usec_total).toBe(2_620_000);
    // The net saving the kernel computes is below what pages_sharing says by its metadata.
    expect(sample.gauges.ksm_general_profit_bytes).toBeLessThan(sample.gauges.ksm_sharing_bytes!);
  });

  it('KSM stopped with nothing merged: the same figures (zeros) every tick', async () => {
    const { sample, errors } = await hostTick('sys-before');
    expect(errors).toEqual([]);
    expect(sample.gauges.ksm_run).toBe(0);
    expect(sample.gauges.ksm_sharing_bytes).toBe(0);
    // Scans done before this host's KSM was stopped stay counted.
    expect(sample.counters.ksm_full_scans_total).toBe(Number(rd('sys-before/full_scans')));
  });

  it('KSM stopped with nothing merged: only `run` is read until it changes', async () => {
    const { root, paths } = hostDirs('sys-before');
    const ksm = path.join(paths.sys, 'kernel', 'mm', 'ksm');
    rmSync(ksm);
    cpSync(path.join(KSM, 'sys-before'), ksm, { recursive: true });
    const c = new HostCollector(parseHostConfig({}), { node: { id: 'n', hostname: 'n', labels: {} }, paths });
    const gauges: Record<string, number>[] = [];
    const acc = { add: (s: EntitySample) => gauges.push(s.gauges), error: () => {} };
    try {
      await c.start();
      c.gatherSync(acc);
      // The kernel could not do this while stopped; a file the collector re-read would show it.
      writeFileSync(path.join(ksm, 'pages_sharing'), '100\n');
      c.gatherSync(acc);
      writeFileSync(path.join(ksm, 'run'), '1\n');
      c.gatherSync(acc);
    } finally {
      await c.shutdown();
      rmSync(root, { recursive: true, force: true });
    }
    expect(gauges.map((g) => [g.ksm_run, g.ksm_sharing_bytes])).toEqual([
      [0, 0],
      [0, 0],
      [1, 100 * PAGE],
    ]);
  });

  it('ksm: false reads nothing of KSM', async () => {
    const { sample } = await hostTick('sys-merged', { ksm: false });
    expect(Object.keys(sample.gauges).filter((k) => k.startsWith('ksm'))).toEqual([]);
    expect(sample.counters.ksmd_cpu_usec_total).toBeUndefined();
  });

  it('MemFree from /proc/meminfo (MemTotal − MemFree: what is resident)', async () => {
    const { sample } = await hostTick('sys-before');
    const kb = Number(/^MemFree:\s+(\d+) kB/m.exec(readFileSync(`${STEP0}/meminfo`, 'latin1'))![1]);
    expect(sample.gauges.memory_free_bytes).toBe(kb * 1024);
  });

  it('values: signed general_profit, garbage reported, not a number', () => {
    expect(parseKsmValue('-4096\n')).toBe(-4096);
    expect(parseKsmValue('12 pages\n')).toBeUndefined();
    const out = { counters: {}, gauges: {} as Record<string, number> };
    const problems: string[] = [];
    ksmMetrics({ run: '1\n', pages_sharing: 'x\n', general_profit: '-8192\n' }, PAGE, out, problems);
    expect(out.gauges).toEqual({ ksm_run: 1, ksm_general_profit_bytes: -8192 });
    expect(problems).toEqual(['ksm pages_sharing: not an integer']);
    expect(ksmdUsec(rd('ksmd-stat').replace('(ksmd)', '(kswapd0)'))).toBeUndefined();
  });

  it('page size from the head of smaps', () => {
    expect(parseKernelPageSize('00400000-00401000 r-xp\nSize: 4 kB\nKernelPageSize:       16 kB\n')).toBe(
      16384,
    );
    expect(parseKernelPageSize('Size: 4 kB\n')).toBeUndefined();
  });
});

describe('a VM hypervisor: smaps_rollup, ksm_stat, balloon', () => {
  it('smaps_rollup: Pss, anonymous, Pss_Anon, file = Rss − Anonymous, KSM, swap (kB → bytes)', () => {
    expect(parseSmapsRollup(rd('smaps_rollup'))).toEqual({
      memory_pss_bytes: 155841 * 1024,
      memory_anon_bytes: 185688 * 1024,
      memory_pss_anon_bytes: 145776 * 1024,
      memory_ksm_bytes: 48572 * 1024,
      memory_swap_bytes: 0,
      memory_file_bytes: (209216 - 185688) * 1024,
    });
    // An older kernel's rollup (no Pss_Anon, no KSM line): those gauges are absent, not 0.
    const old = rd('smaps_rollup')
      .split('\n')
      .filter((l) => !/^(Pss_|KSM)/.test(l))
      .join('\n');
    const g = parseSmapsRollup(old);
    expect(g.memory_pss_anon_bytes).toBeUndefined();
    expect(g.memory_ksm_bytes).toBeUndefined();
    expect(g.memory_pss_bytes).toBe(155841 * 1024);
    expect(parseSmapsRollup('')).toEqual({});
  });

  it('ksm_stat: merged and zero pages × page size, the kernel profit as is', () => {
    expect(parseKsmStat(rd('ksm_stat'), PAGE)).toEqual({
      ksm_merging_bytes: 12155 * PAGE,
      ksm_zero_page_bytes: 0,
      ksm_process_profit_bytes: 48254784,
    });
    // The rollup's KSM line and ksm_stat's merging pages agree within the pages merged between reads.
    const rollupKsm = parseSmapsRollup(rd('smaps_rollup')).memory_ksm_bytes!;
    expect(Math.abs(rollupKsm - 12155 * PAGE)).toBeLessThan(64 * PAGE);
  });

  it('query-balloon and query-memory-size-summary replies', () => {
    const r = JSON.parse(rd('qmp-replies.json'));
    expect(balloonActual(r['query-balloon'])).toEqual({ balloon_actual_bytes: 192 * 1024 * 1024 });
    expect(configuredMemory(r['query-memory-size-summary'])).toBe(192 * 1024 * 1024);
    expect(balloonActual({ actual: -1 })).toEqual({});
    expect(configuredMemory({ 'base-memory': 'x' })).toBeUndefined();
  });
});
