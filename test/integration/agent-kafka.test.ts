// `strata agent` as a real process against real Kafka: --once ndjson output, ordered keyed ticks
// with headers on the stack's broker, a clear error for a missing topic, and a 30 s outage of a
// private broker (stopped and restarted on the same data) with buffers of 100 and 10 ticks.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { HEADERS, SCHEMA_VERSION, validateSampleMessage } from '../../schemas/sample.ts';
import { createTopics, freePort, type KafkaHandle, startKafka } from '../../stack/index.ts';

const STRATA = path.resolve('bin/strata.js');
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const f of cleanups.reverse()) await f();
});

interface Agent {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startAgent(args: string[], env: Record<string, string> = {}): Agent {
  const child = spawn(process.execPath, [STRATA, 'agent', ...args], {
    env: { ...process.env, STRATA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

interface Received {
  key: string;
  runId: string;
  seq: number;
  ts: number;
  headers: Record<string, string>;
  node: string;
}

/** Every record of `topic` from the beginning (all partitions), up to the current end offsets. */
async function readTopic(brokers: string, topic: string): Promise<Received[]> {
  const kafka = new Kafka({ clientId: 'strata-agent-test', brokers: [brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((e) => [e.partition, Number(e.high)]));
  const total = [...want.values()].reduce((a, b) => a + b, 0);
  const out: Received[] = [];
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: `strata-agent-test-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`read ${out.length}/${total} records of ${topic}`)),
      60_000,
    );
    void consumer.run({
      eachMessage: async ({ message }) => {
        const parsed = validateSampleMessage(JSON.parse(message.value!.toString('utf8')));
        if (!parsed.ok) throw new Error(parsed.reason);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        out.push({
          key: message.key!.toString(),
          seq: parsed.message.seq,
          runId: parsed.message.agent.run_id,
          ts: parsed.message.ts,
          headers,
          node: parsed.message.node.id,
        });
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

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  // Summed over label sets (strata_agent_buffer_ticks has where="memory" and where="spill").
  const lines = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!lines.length) return Number.NaN;
  return lines.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not ready (server not listening yet)
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('strata agent', () => {
  it('--once --output ndjson prints one valid SampleMessage with a host sample and exits 0', async () => {
    const a = startAgent(['--once', '--output', 'ndjson', '--node-id', 'once-node'], { KAFKA_BROKERS: '' });
    expect(await a.exited).toBe(0);
    const lines = a.stdout().trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = validateSampleMessage(JSON.parse(lines[0]!));
    if (!r.ok) throw new Error(r.reason);
    expect(r.message.v).toBe(SCHEMA_VERSION);
    expect(r.message.node.id).toBe('once-node');
    expect(r.message.ts % 1000).toBe(0);
    const host = r.message.samples.find((s) => s.entity.layer === 'host');
    expect(host?.entity.id).toBe('once-node');
    expect(host?.counters.cpu_user_usec_total).toBeGreaterThan(0);
    expect(host?.counters.context_switches_total).toBeGreaterThan(0);
  });

  it('publishes ticks to Kafka in order, keyed by node id, with the schema headers', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = `strata.agent-test.${randomUUID().slice(0, 8)}`;
    await createTopics(brokers, [{ topic, numPartitions: 3 }]);
    const node = `order-${randomUUID().slice(0, 6)}`;
    const a = startAgent(['--interval', '250ms', '--node-id', node, '--collectors', 'host'], {
      KAFKA_BROKERS: brokers,
      STRATA_SAMPLES_TOPIC: topic,
    });
    await until('agent started', async () => /"msg":"agent started"/.test(a.stderr()), 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.stderr()).toMatch(/"unsent_ticks":0/);
    const got = await readTopic(brokers, topic);
    expect(got.length).toBeGreaterThanOrEqual(6);
    expect(got.map((m) => m.seq)).toEqual(got.map((_, i) => i)); // one partition per key: in order, no gap
    for (const m of got) {
      expect(m.key).toBe(node);
      expect(m.node).toBe(node);
      expect(m.ts % 250).toBe(0);
      expect(m.headers[HEADERS.schemaVersion]).toBe(String(SCHEMA_VERSION));
      expect(m.headers[HEADERS.contentType]).toBe('application/json');
    }
  });

  it('names the missing topic and the brokers, and does not exit while sampling', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = `strata.missing.${randomUUID().slice(0, 8)}`;
    const a = startAgent(['--once', '--collectors', 'host', '--shutdown-timeout', '20s'], {
      KAFKA_BROKERS: brokers,
      STRATA_SAMPLES_TOPIC: topic,
    });
    expect(await a.exited).toBe(1); // --once: the one tick could not be delivered
    expect(a.stderr()).toContain(`topic \\"${topic}\\" does not exist on Kafka ${brokers}`);
    expect(a.stderr()).toContain('STRATA_SAMPLES_TOPIC');
  });

  it('starts while Kafka is unreachable, buffers, and delivers every tick from seq 0 once it is reachable', async () => {
    const brokers = inject('kafkaBrokers');
    const [host, port] = brokers.split(':') as [string, string];
    const topic = `strata.agent-late.${randomUUID().slice(0, 8)}`;
    await createTopics(brokers, [{ topic, numPartitions: 1 }]);
    // The agent bootstraps through a port where nothing listens yet; later a TCP relay to the real
    // broker appears there (the broker's metadata then points the client at the broker itself).
    const relayPort = await freePort();
    const node = `late-${randomUUID().slice(0, 6)}`;
    const a = startAgent(['--interval', '250ms', '--node-id', node, '--collectors', 'host'], {
      KAFKA_BROKERS: `127.0.0.1:${relayPort}`,
      STRATA_SAMPLES_TOPIC: topic,
    });
    await until('outage logged', async () => /kafka unavailable; buffering ticks/.test(a.stderr()), 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    const relay = net.createServer((client) => {
      const upstream = net.connect(Number(port), host);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(relayPort, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => relay.close(() => r())));
    await until(
      'recovered',
      async () => /kafka available again; draining the buffer/.test(a.stderr()),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.stderr()).toMatch(/"unsent_ticks":0/);
    const got = await readTopic(brokers, topic);
    expect(got.length).toBeGreaterThan(8); // ≥ 2 s of 250 ms ticks were buffered first
    expect(got.map((m) => m.seq)).toEqual(got.map((_, i) => i));
  });

  it('keeps unsent ticks in the spill file across a restart and sends them first, in order', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = `strata.agent-spill.${randomUUID().slice(0, 8)}`;
    await createTopics(brokers, [{ topic, numPartitions: 1 }]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-spill-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const spill = path.join(dir, 'spill');
    const node = `spill-${randomUUID().slice(0, 6)}`;
    const common = ['--interval', '200ms', '--node-id', node, '--collectors', 'host', '--spill-file', spill];
    // Run 1: Kafka unreachable (nothing listens on port 1), so every tick stays buffered.
    const first = startAgent([...common, '--shutdown-timeout', '1s', '--buffer-max-ticks', '3'], {
      KAFKA_BROKERS: '127.0.0.1:1',
      STRATA_SAMPLES_TOPIC: topic,
    });
    await until(
      'ticks buffered',
      async () => /kafka unavailable; buffering ticks/.test(first.stderr()),
      30_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.stderr()).toContain('127.0.0.1:1');
    const persisted = Number(/"persisted_to_spill":(\d+)/.exec(first.stderr())?.[1]);
    expect(persisted).toBeGreaterThanOrEqual(3); // 3 in memory + the rest already spilled
    expect(fs.readdirSync(dir).length).toBeGreaterThan(0);

    // Run 2: Kafka reachable; the previous run's ticks go first.
    const second = startAgent(common, { KAFKA_BROKERS: brokers, STRATA_SAMPLES_TOPIC: topic });
    await until('agent started', async () => /"msg":"agent started"/.test(second.stderr()), 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const recovered = Number(/"records":(\d+)/.exec(second.stderr())?.[1]);
    const got = await readTopic(brokers, topic);
    const runs = [...new Set(got.map((m) => m.runId))];
    expect(runs).toHaveLength(2);
    const old = got.filter((m) => m.runId === runs[0]);
    expect(old.length).toBe(recovered);
    expect(old.map((m) => m.seq)).toEqual(old.map((_, i) => i)); // every tick of run 1, in order
    const fresh = got.filter((m) => m.runId === runs[1]);
    expect(fresh.length).toBeGreaterThan(3);
    expect(got.slice(0, old.length).every((m) => m.runId === runs[0])).toBe(true); // old ones first
    expect(fs.readdirSync(dir)).toEqual([]); // fully drained segments are deleted
  });

  it('survives a 30 s broker outage: buffer 100 loses nothing, buffer 10 keeps the newest and counts drops', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-kafka-'));
    const port = await freePort();
    const controllerPort = await freePort();
    const topic = 'strata.samples';
    let broker: KafkaHandle | undefined = await startKafka({
      port,
      controllerPort,
      dataDir,
      heapMb: 256,
      topics: [{ topic, numPartitions: 2 }],
    });
    cleanups.push(async () => {
      await broker?.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });
    const brokers = broker.brokers;
    const run = randomUUID().slice(0, 6);
    const setups = [
      { node: `big-${run}`, maxTicks: 100, metrics: await freePort() },
      { node: `small-${run}`, maxTicks: 10, metrics: await freePort() },
    ];
    const agents = setups.map((s) =>
      startAgent(
        [
          '--interval',
          '1s',
          '--node-id',
          s.node,
          '--collectors',
          'host',
          '--buffer-max-ticks',
          String(s.maxTicks),
          '--metrics-listen',
          `127.0.0.1:${s.metrics}`,
        ],
        { KAFKA_BROKERS: brokers, STRATA_SAMPLES_TOPIC: topic },
      ),
    );
    for (const s of setups) {
      await until(
        `${s.node} publishing`,
        async () => (await metric(s.metrics, 'strata_agent_published_ticks_total')) >= 3,
        60_000,
      );
    }

    await broker.stop();
    broker = undefined;
    await new Promise((r) => setTimeout(r, 30_000));
    for (const s of setups) {
      expect(await metric(s.metrics, 'strata_agent_output_up')).toBe(0);
      expect(await metric(s.metrics, 'strata_agent_ticks_total')).toBeGreaterThan(30);
    }
    expect(await metric(setups[1]!.metrics, 'strata_agent_buffer_dropped_ticks_total')).toBeGreaterThan(0);
    broker = await startKafka({ port, controllerPort, dataDir, heapMb: 256 });

    for (const s of setups) {
      await until(
        `${s.node} drained`,
        async () =>
          (await metric(s.metrics, 'strata_agent_output_up')) === 1 &&
          (await metric(s.metrics, 'strata_agent_buffer_ticks')) === 0,
        120_000,
      );
    }
    const dropped = await Promise.all(
      setups.map((s) => metric(s.metrics, 'strata_agent_buffer_dropped_ticks_total')),
    );
    const sampled = await Promise.all(setups.map((s) => metric(s.metrics, 'strata_agent_ticks_total')));
    for (const a of agents) a.child.kill('SIGTERM');
    for (const a of agents) expect(await a.exited).toBe(0);
    // Both logged the outage once with the broker address, and its end.
    for (const a of agents) {
      const outages = a.stderr().match(/"msg":"kafka unavailable; buffering ticks/g) ?? [];
      expect(outages.length).toBeGreaterThanOrEqual(1);
      expect(outages.length).toBeLessThanOrEqual(3); // once per distinct cause (refused, then metadata...)
      expect(a.stderr()).toContain(brokers);
      expect(a.stderr()).toMatch(/"msg":"kafka available again; draining the buffer"/);
    }

    const all = await readTopic(brokers, topic);
    const seqsOf = (node: string) => all.filter((m) => m.node === node).map((m) => m.seq);

    // Buffer 100 > outage: every tick exactly once, in order, no gap.
    const big = seqsOf(setups[0]!.node);
    // ≥ 3 published before the outage + one tick per second of it; and every tick the agent had
    // sampled when it was stopped (more may come out in its last tick and shutdown flush).
    expect(big.length).toBeGreaterThan(30);
    expect(big.length).toBeGreaterThanOrEqual(sampled[0]!);
    expect(big).toEqual(big.map((_, i) => i));
    expect(dropped[0]).toBe(0);

    // Buffer 10: in order, no duplicates, exactly the counted drops missing, as one run of the
    // oldest buffered ticks; everything after the gap arrived.
    const small = seqsOf(setups[1]!.node);
    for (let i = 1; i < small.length; i++) expect(small[i]).toBeGreaterThan(small[i - 1]!);
    const last = small.at(-1)!;
    const missing: number[] = [];
    for (let s = 0; s <= last; s++) if (!small.includes(s)) missing.push(s);
    expect(dropped[1]).toBeGreaterThan(0);
    expect(missing.length).toBe(dropped[1]);
    expect(missing.at(-1)! - missing[0]! + 1).toBe(missing.length); // one contiguous gap
    expect(small.filter((s) => s > missing.at(-1)!).length).toBeGreaterThanOrEqual(10);
    process.stderr.write(
      `[agent outage] buffer 100: ${big.length} ticks, all arrived; buffer 10: ${small.length} arrived, ` +
        `${dropped[1]} dropped (seq ${missing[0]}..${missing.at(-1)}), last seq ${last}\n`,
    );
  }, 400_000);
});
