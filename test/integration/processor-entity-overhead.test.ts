// Schema version 3 through the real stack: recorded agent messages of a node with a TCG VM and its
// guest, and of a node with Docker containers writing to disk, go through Kafka and the processor
// into InfluxDB. A VM's and a container's overhead must be fields of their own strata_vm /
// strata_container points (a container's device shares on its device rows), strata_overhead must
// hold the node's totals only, and the fields version 3 dropped must not be stored. A VM whose
// guest view arrives a message late has its overhead written as a second line of its strata_vm
// point (same series, same time): InfluxDB must merge the two lines into one point.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createProcessor, type ProcessorRuntime, resolveProcessorConfig } from '../../processor/index.ts';
import { createPipeline } from '../../processors/pipeline.ts';
import type { SampleMessage } from '../../schemas/sample.ts';
import {
  createTopic,
  expectedPoints,
  expectStoredAsExpected,
  type InfluxResult,
  influxQl,
  produceTick,
  ROOT,
  seriesKey,
  seriesTimes,
  testProducer,
  waitForStored,
} from './processor.helpers.ts';

const brokers = inject('kafkaBrokers');
const influxUrl = inject('influxUrl');
const id = randomUUID().slice(0, 8);
const topic = `strata.samples.v3-${id}`;
const db = `strata_v3_${id}`;

let processor: ProcessorRuntime | undefined;

afterAll(async () => {
  await processor?.stop();
  await influxQl(influxUrl, `DROP DATABASE "${db}"`).catch(() => {});
});

/**
 * A recording (testdata/processor, captured by its capture-*.sh / .ts) as node `node`, with every
 * time moved by the same amount so that its first message is at `startMs` (inside the processor's
 * samples.maxAge window); the offsets between the VM's and its guest's samples are kept.
 */
function recording(file: string, node: string, startMs: number): SampleMessage[] {
  const raw = gunzipSync(readFileSync(path.join(ROOT, 'testdata/processor', file)))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SampleMessage);
  const oldId = raw[0]!.node.id;
  const shift = startMs - raw[0]!.ts;
  return raw.map((msg) => {
    const m = JSON.parse(JSON.stringify(msg).split(oldId).join(node)) as SampleMessage;
    m.node.hostname = node;
    m.ts += shift;
    for (const s of m.samples) if (s.ts !== undefined) s.ts += shift;
    return m;
  });
}

const values = (r: InfluxResult) => (r.results?.[0]?.series ?? []).flatMap((s) => s.values);
const fieldKeys = async (measurement: string) =>
  values(await influxQl(influxUrl, `SHOW FIELD KEYS FROM "${measurement}"`, db)).map((v) => String(v[0]));
const count = async (q: string) => {
  const v = values(await influxQl(influxUrl, q, db));
  return v.length === 0 ? 0 : Number(v[0]![1]);
};

describe('schema version 3 end to end (recorded VM, guest and containers → Kafka → processor → InfluxDB)', () => {
  it("stores a VM's and a container's overhead on their own points, the node's totals alone in strata_overhead", async () => {
    const start = Date.now() - 10 * 60_000;
    const vmNode = `v3-vm-${id}`;
    const ctNode = `v3-ct-${id}`;
    const nodes = [
      recording('vm-tcg.ndjson.gz', vmNode, start),
      recording('noisy-1m-direct.ndjson.gz', ctNode, start),
    ];
    // One message per node per tick, as agents send them.
    const ticks: SampleMessage[][] = [];
    for (let t = 0; t < Math.max(...nodes.map((n) => n.length)); t++)
      ticks.push(nodes.flatMap((n) => (n[t] === undefined ? [] : [n[t]!])));
    const expected = expectedPoints(ticks);

    // The VM points written twice (its own line, then its overhead joined a message late).
    const lines = new Map<string, number>();
    const pipeline = createPipeline();
    for (const tick of ticks)
      for (const m of tick)
        for (const p of pipeline.handle(structuredClone(m)).points)
          lines.set(seriesKey(p), (lines.get(seriesKey(p)) ?? 0) + 1);
    const twice = [...lines].filter(([, n]) => n > 1).map(([k]) => k);
    expect(twice.length).toBeGreaterThan(0);
    expect(twice.every((k) => k.startsWith('strata_vm|'))).toBe(true);

    await createTopic(brokers, topic, 2);
    await influxQl(influxUrl, `CREATE DATABASE "${db}"`);
    const producer = testProducer(brokers);
    await producer.connect();
    for (const tick of ticks) await produceTick(producer, topic, tick);
    await producer.disconnect();
    processor = createProcessor(
      resolveProcessorConfig(
        { metricsListen: '' },
        {
          KAFKA_BROKERS: brokers,
          STRATA_SAMPLES_TOPIC: topic,
          STRATA_DLQ_TOPIC: `strata.dlq.v3-${id}`,
          STRATA_ALERTS_TOPIC: '',
          STRATA_GROUP_ID: `g-v3-${id}`,
          INFLUX_URL: influxUrl,
          INFLUX_BUCKET: db,
        },
      ),
    );
    await processor.start();
    const stored = await waitForStored(influxUrl, db, expected);

    // What the pipeline writes is what InfluxDB holds, the two lines of a late join as one point.
    expectStoredAsExpected(stored, expected);
    for (const k of twice) {
      const row = stored.get(k) as Record<string, unknown>;
      expect(row.cpu_cores, k).toBeTypeOf('number'); // from the VM's own line
      expect(row.guest_entity_id, k).toBeTypeOf('string'); // from the late overhead line
    }

    // strata_overhead: the node's totals only, one point per node and tick after the first.
    expect(
      values(await influxQl(influxUrl, 'SHOW TAG VALUES FROM strata_overhead WITH KEY = "layer"', db)).map(
        (v) => v[1],
      ),
    ).toEqual(['node']);
    const nodeRows = [...expected.values()].filter((p) => p.measurement === 'strata_overhead').length;
    expect(nodeRows).toBeGreaterThan(ticks.length);
    expect(await seriesTimes(influxUrl, db, 'strata_overhead')).toEqual({ times: nodeRows, duplicates: 0 });

    // A VM's overhead on its strata_vm entity point (not on its device or interface rows).
    const vmKeys = await fieldKeys('strata_vm');
    for (const f of ['cpu_overhead_ratio', 'cpu_overhead_cores', 'memory_overhead_bytes', 'guest_entity_id'])
      expect(vmKeys).toContain(f);
    expect(
      await count(`SELECT count(cpu_overhead_ratio) FROM strata_vm WHERE device = '' AND interface = ''`),
    ).toBeGreaterThan(ticks.length / 2);
    expect(await count(`SELECT count(guest_entity_id) FROM strata_vm WHERE device != ''`)).toBe(0);

    // A container's overhead on its strata_container entity point; its device shares on its device rows.
    expect(
      await count(
        `SELECT count(io_stall_ms_per_op) FROM strata_container WHERE device = '' AND interface = ''`,
      ),
    ).toBeGreaterThan(0);
    expect(
      await count(`SELECT count(iops_share_ratio) FROM strata_container WHERE device != ''`),
    ).toBeGreaterThan(0);
    expect(await count(`SELECT count(iops_share_ratio) FROM strata_container WHERE device = ''`)).toBe(0);
    expect(
      await count(`SELECT count(cpu_cores) FROM strata_container WHERE device = '' AND interface = ''`),
    ).toBeGreaterThan(0);

    // Not stored in version 3: read instead read_iops + write_iops, cpu_cores, the VM's own
    // cpu_cores and page_faults_per_second, psi_*_stall_ratio (the agents still send avg10).
    const gone =
      /^(iops|cpu_usage_cores|hypervisor_cpu_cores|hypervisor_page_faults_per_second|psi_\w+_avg10_pct)$/;
    for (const m of ['strata_host', 'strata_container', 'strata_vm', 'strata_guest', 'strata_overhead'])
      expect(
        (await fieldKeys(m)).filter((k) => gone.test(k)),
        m,
      ).toEqual([]);
  }, 150_000);
});
