// The agent's spill file on a real, small file system (a 64 KiB tmpfs mounted here) that fills up:
// the spill module and a real `strata agent` process keep sampling, roll back the refused appends,
// count what is lost, and after a restart (with a byte flipped by hand in one record) recover
// exactly the intact records, set the corrupt segment aside, and deliver them to a real Kafka topic.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type DropReason, TickBuffer } from '../../agent/buffer.ts';
import { scanRecords } from '../../agent/spill.ts';
import { validateSampleMessage } from '../../schemas/sample.ts';
import { createTopics, freePort } from '../../stack/index.ts';

const STRATA = path.resolve('bin/strata.js');
const STAT = fs.readFileSync('testdata/proc/hybrid-host/step0/stat', 'utf8');
const children: ChildProcess[] = [];
let root = '';
const mounts: string[] = [];

/** A fresh 64 KiB tmpfs. */
function smallDisk(): string {
  const dir = fs.mkdtempSync(path.join(root, 'disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-spill-disk-'));
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const m of mounts) execFileSync('umount', ['--lazy', m]);
  fs.rmSync(root, { recursive: true, force: true });
});

const tick = (seq: number) => ({
  seq,
  ts: 1_795_000_000_000 + seq * 1000,
  key: 'n1',
  value: Buffer.from(JSON.stringify({ v: 1, seq, stat: STAT })),
});

/** seq of every intact record in the spill segments under dir, in segment order. */
function intactSeqs(dir: string, base = 'spill'): { seqs: number[]; recs: { file: string; off: number }[] } {
  const seqs: number[] = [];
  const recs: { file: string; off: number }[] = [];
  const segs = fs
    .readdirSync(dir)
    .filter((f) => new RegExp(`^${base}\\.\\d{6}$`).test(f))
    .sort();
  for (const f of segs) {
    const data = fs.readFileSync(path.join(dir, f));
    const { good, corrupt } = scanRecords(data);
    expect(corrupt, `${f} has no partial record`).toEqual([]);
    for (const [off] of good) {
      seqs.push(data.readDoubleLE(off + 8 + 8));
      recs.push({ file: path.join(dir, f), off });
    }
  }
  return { seqs, recs };
}

describe('spill file on a full disk', () => {
  it('the buffer keeps going when the disk fills: refused appends are rolled back and counted; a restart recovers them all', () => {
    const disk = smallDisk();
    const base = path.join(disk, 'spill');
    const drops: Record<DropReason, number> = { bound: 0, spill_write_error: 0, spill_unreadable: 0 };
    const errors: string[] = [];
    const b = new TickBuffer({
      maxTicks: 2,
      maxBytes: 1 << 30,
      spillFile: base,
      maxSpillBytes: 1 << 20, // bigger than the disk: the disk is the limit
      compressBacklog: false,
      onDrop: (f, l, reason) => (drops[reason] += l - f + 1),
      onSpillError: (e) => errors.push(`${e.op}:${e.code}`),
    });
    const pushed = 300; // ~1 KB each: ~5 times the disk
    for (let s = 0; s < pushed; s++) b.push(tick(s));
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors)).toEqual(new Set(['append:ENOSPC']));
    expect(drops.spill_write_error).toBe(errors.length);
    expect(drops.bound).toBe(0);
    expect(b.memoryTicks).toBe(2);
    // Every tick is accounted for: in memory, in the spill, or counted as lost.
    expect(b.memoryTicks + b.spillTicks + drops.spill_write_error).toBe(pushed);
    const spilled = b.spillTicks;
    expect(spilled).toBeGreaterThan(10);
    // The disk holds exactly the indexed records: nothing partial was left behind.
    const onDisk = intactSeqs(disk);
    expect(onDisk.seqs).toHaveLength(spilled);
    expect(onDisk.seqs).toEqual(b.peek(spilled).map((t) => t.seq));
    // Shutdown on a full disk: the 2 in memory cannot be written either; counted, no throw.
    expect(b.persist()).toBe(0);
    expect(drops.spill_write_error).toBe(errors.length);
    b.close();

    const again = new TickBuffer({ maxTicks: 2, maxBytes: 1 << 30, spillFile: base, maxSpillBytes: 1 << 20 });
    expect(again.recovered).toEqual({ records: spilled, corruptBytes: 0, quarantined: 0 });
    const seqs: number[] = [];
    while (again.length) {
      const batch = again.peek(50);
      seqs.push(...batch.map((t) => t.seq));
      again.consume(batch.at(-1)!.id);
    }
    expect(seqs).toEqual(onDisk.seqs);
    again.close();
    expect(fs.readdirSync(disk)).toEqual([]);
  });

  it('a real agent fills the disk, keeps sampling, and after a restart delivers exactly the intact records to Kafka', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = `strata.agent-disk.${randomUUID().slice(0, 8)}`;
    await createTopics(brokers, [{ topic, numPartitions: 1 }]);
    const disk = smallDisk();
    const spill = path.join(disk, 'spill');
    const port = await freePort();
    const node = `disk-${randomUUID().slice(0, 6)}`;
    const common = [
      '--node-id',
      node,
      '--collectors',
      'host',
      '--spill-file',
      spill,
      '--spill-max-bytes',
      '1048576',
    ];

    // Run 1: Kafka unreachable; 2 ticks in memory, the rest spilled until the disk is full.
    const first = run(
      [...common, '--interval', '50ms', '--buffer-max-ticks', '2', '--metrics-listen', `127.0.0.1:${port}`],
      { KAFKA_BROKERS: '127.0.0.1:1', STRATA_SAMPLES_TOPIC: topic },
    );
    await until(
      'the disk to refuse appends',
      async () => (await metric(port, 'strata_agent_spill_write_errors_total')) > 0,
      60_000,
    );
    const ticksAtFull = await metric(port, 'strata_agent_ticks_total');
    await until(
      '20 more ticks',
      async () => (await metric(port, 'strata_agent_ticks_total')) >= ticksAtFull + 20,
      30_000,
    );
    expect(first.child.exitCode).toBeNull(); // still running
    // One scrape for both: the agent keeps ticking (and refusing) between two.
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const lost = sumOf(text, 'strata_agent_spill_lost_ticks_total');
    expect(lost).toBeGreaterThanOrEqual(15);
    expect(sumOf(text, 'strata_agent_spill_write_errors_total')).toBe(lost);
    expect(first.stderr().match(/spill file refused a tick/g)).toHaveLength(1); // logged once
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    // By hand: flip a byte inside the 3rd intact record.
    const before = intactSeqs(disk);
    expect(before.seqs.length).toBeGreaterThan(5);
    const victim = before.recs[2]!;
    const fd = fs.openSync(victim.file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, victim.off + 40);
    fs.closeSync(fd);
    const expected = before.seqs.filter((_, i) => i !== 2);

    // Run 2: Kafka reachable. Recovers the intact records, sets the segment aside, sends them first.
    const port2 = await freePort();
    const second = run([...common, '--interval', '200ms', '--metrics-listen', `127.0.0.1:${port2}`], {
      KAFKA_BROKERS: brokers,
      STRATA_SAMPLES_TOPIC: topic,
    });
    await until(
      'the recovered ticks to be published',
      async () => {
        return (await metric(port2, 'strata_agent_published_ticks_total')) > expected.length;
      },
      60_000,
    );
    expect(await metric(port2, 'strata_agent_spill_recovered_ticks_total')).toBe(expected.length);
    expect(await metric(port2, 'strata_agent_spill_quarantined_segments_total')).toBe(1);
    expect(await metric(port2, 'strata_agent_spill_corrupt_bytes_total')).toBeGreaterThan(0);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(fs.readdirSync(disk).filter((f) => f.includes('.corrupt-'))).toHaveLength(1);

    const got = await readTopic(brokers, topic);
    const runs = [...new Set(got.map((m) => m.runId))];
    expect(runs).toHaveLength(2);
    const old = got.filter((m) => m.runId === runs[0]);
    expect(old.map((m) => m.seq)).toEqual(expected);
  });
});

function run(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [STRATA, 'agent', ...args], {
    env: { ...process.env, STRATA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => err, exited };
}

async function metric(port: number, name: string): Promise<number> {
  return sumOf(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), name);
}

/** A metric's value summed over its label sets, 0 when absent. */
function sumOf(text: string, name: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!lines.length) return 0;
  return lines.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function readTopic(brokers: string, topic: string): Promise<{ runId: string; seq: number }[]> {
  const kafka = new Kafka({ clientId: 'strata-disk-test', brokers: [brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const total = (await admin.fetchTopicOffsets(topic)).reduce((n, e) => n + Number(e.high), 0);
  await admin.disconnect();
  const out: { runId: string; seq: number }[] = [];
  const consumer = kafka.consumer({ groupId: `strata-disk-test-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${out.length}/${total} of ${topic}`)), 60_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        const m = validateSampleMessage(JSON.parse(message.value!.toString('utf8')));
        if (!m.ok) throw new Error(m.reason);
        out.push({ runId: m.message.agent.run_id, seq: m.message.seq });
        if (out.length >= total) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return out;
}
