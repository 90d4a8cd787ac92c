// The vm collector's pure parsers on real QMP replies and /proc files of the TCG test VM's
// hypervisor process (testdata/qmp, captured by stack/qemu/capture-testdata.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { devMajorMinor } from '../../collectors/vm/backing.ts';
import {
  balloonGuestStats,
  blockDeviceKey,
  blockImageFiles,
  blockstatsDevices,
  findBalloonPath,
  nonZeroUuid,
  parsePidStat,
  parseQemuCmdline,
  parseStatusRssBytes,
  pidStatCounters,
  threadUsec,
  vcpuThreadIds,
} from '../../collectors/vm/parsers.ts';

/** The `return` of the reply with `id` in a captured QMP session (one JSON object per line). */
function reply(file: string, id: string): unknown {
  for (const line of readFileSync(`testdata/qmp/${file}`, 'utf8').split('\n')) {
    if (!line) continue;
    const msg = JSON.parse(line);
    if (msg.id === id) return msg.return ?? msg.error;
  }
  throw new Error(`no reply ${id} in ${file}`);
}
const proc = (f: string) => readFileSync(`testdata/qmp/proc/${f}`, 'latin1');

describe('QMP replies', () => {
  it('query-blockstats → disk0 with the hypervisor-side op counts and total times', () => {
    const problems: string[] = [];
    const busy = blockstatsDevices(reply('session-busy.jsonl', 'c1'), problems);
    expect(problems).toEqual([]);
    expect(busy).toEqual({
      disk0: {
        counters: {
          reads_completed_total: 2002,
          writes_completed_total: 0,
          flushes_completed_total: 0,
          read_bytes_total: 8196608,
          written_bytes_total: 0,
          read_time_ns_total: 71877757,
          write_time_ns_total: 0,
          flush_time_ns_total: 0,
        },
      },
    });
    // 71.9 ms / 2002 ops: the 36 µs/op QEMU spent per read in this capture.
    expect(Math.round(busy.disk0!.counters.read_time_ns_total! / 2002 / 1000)).toBe(36);
    const idle = blockstatsDevices(reply('session-idle.jsonl', 'c6'));
    expect(idle.disk0!.counters.reads_completed_total).toBe(2);
  });

  it('keys devices by drive name, else the qdev id, else the node name', () => {
    expect(blockDeviceKey({ device: 'disk0', qdev: '/machine/peripheral/vd0/virtio-backend' })).toBe('disk0');
    expect(blockDeviceKey({ device: '', qdev: '/machine/peripheral/vd0/virtio-backend' })).toBe('vd0');
    expect(blockDeviceKey({ device: '', qdev: '', 'node-name': '#block127' })).toBe('#block127');
    const problems: string[] = [];
    expect(blockstatsDevices({ not: 'an array' }, problems)).toEqual({});
    expect(problems).toEqual(['query-blockstats: reply is not an array']);
  });

  it('query-cpus-fast → vCPU thread ids', () => {
    expect(vcpuThreadIds(reply('session-idle.jsonl', 'c5'))).toEqual([24532]);
    expect(vcpuThreadIds(null)).toEqual([]);
  });

  it('balloon guest-stats → guest_reported_* (faults from the guest driver)', () => {
    expect(balloonGuestStats(reply('session-busy.jsonl', 'c2'))).toEqual({
      counters: { guest_reported_page_faults_total: 9731, guest_reported_major_page_faults_total: 0 },
      gauges: { guest_reported_memory_free_bytes: 130752512 },
    });
    // Before the guest driver reported anything, last-update is 0: nothing is published.
    expect(balloonGuestStats({ stats: { 'stat-minor-faults': 2 ** 64 - 1 }, 'last-update': 0 })).toEqual({
      counters: {},
      gauges: {},
    });
  });

  it('qom-list finds the balloon; query-uuid; error replies', () => {
    expect(findBalloonPath(reply('session-idle.jsonl', 'c7'))).toBe('/machine/peripheral/balloon0');
    expect(nonZeroUuid(reply('session-idle.jsonl', 'c3'))).toBe('5a3c3e2e-1b7e-4a53-9a33-2c0de0a1b001');
    expect(nonZeroUuid({ UUID: '00000000-0000-0000-0000-000000000000' })).toBeUndefined();
    expect(reply('session-idle.jsonl', 'c10')).toEqual({
      class: 'CommandNotFound',
      desc: 'The command no-such-command has not been found',
    });
  });
});

describe('backing files', () => {
  it('query-block → the image file behind each drive', () => {
    expect(blockImageFiles(reply('query-block.jsonl', 'c1'))).toEqual([
      { device: 'disk0', file: '/tmp/strata-capture-qb/disk.raw' },
    ]);
    expect(blockImageFiles([{ device: 'cd0', locked: false }])).toEqual([]); // no medium
    expect(blockImageFiles([{ device: 'd', inserted: { file: 'json:{"driver":"nbd"}' } }])).toEqual([]);
  });

  it('decodes Linux dev_t (254:0 is vda here; large minors use the high bits)', () => {
    expect(devMajorMinor(0xfe00n)).toEqual([254, 0]);
    expect(devMajorMinor(0x801n)).toEqual([8, 1]);
    expect(devMajorMinor((0x103n << 8n) | 0x12n | (0x345n << 20n))).toEqual([259, 0x34512]);
  });
});

describe('hypervisor /proc files', () => {
  it('/proc/PID/stat → CPU µs and faults; status → RSS bytes', () => {
    const s = parsePidStat(proc('stat'))!;
    expect(s).toEqual({ minflt: 14520, majflt: 41, utime: 1210, stime: 46, threads: 5, rss: 58700 });
    expect(pidStatCounters(s).counters).toEqual({
      cpu_usage_usec_total: 12_560_000,
      cpu_user_usec_total: 12_100_000,
      cpu_system_usec_total: 460_000,
      page_faults_total: 14561,
      major_page_faults_total: 41,
    });
    expect(parseStatusRssBytes(proc('status'))).toBe(234948 * 1024);
    expect(parsePidStat('garbage')).toBeUndefined();
    expect(parsePidStat('1 (x) R 1 2')).toBeUndefined();
  });

  it('/proc/PID/task/TID/stat of the vCPU thread, also with a comm holding spaces and parentheses', () => {
    const task = proc('task/24532/stat');
    expect(threadUsec(parsePidStat(task)!)).toBe((1170 + 23) * 10_000);
    const renamed = task.replace('(qemu-system-x86)', '(CPU 0/KVM) (x)');
    expect(parsePidStat(renamed)).toEqual(parsePidStat(task));
  });

  it('the QEMU command line gives the agent socket, the sockets and the accelerator', () => {
    const c = parseQemuCmdline(proc('cmdline'));
    expect(c.accel).toBe('tcg');
    expect(c.agentSocket).toBe('/tmp/strata-capture-wEbswn/agent.sock');
    expect(c.socketPaths).toEqual([
      '/tmp/strata-capture-wEbswn/qmp.sock',
      '/tmp/strata-capture-wEbswn/agent.sock',
      '/tmp/strata-capture-wEbswn/agent.ctl.sock',
    ]);
    expect(c.taps).toEqual([]);
    expect(parseQemuCmdline(proc('cmdline'), 'strata.ctl').agentSocket).toBe(
      '/tmp/strata-capture-wEbswn/agent.ctl.sock',
    );
    expect(parseQemuCmdline(proc('cmdline'), 'org.qemu.guest_agent.0').agentSocket).toBeUndefined();
  });
});
