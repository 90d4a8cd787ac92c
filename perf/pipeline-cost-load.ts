// perf:pipeline-cost's agents, as their own process so that their CPU is billed to no measured
// component: `--nodes` nodes publish one message each every `--interval-ms` for `--seconds`
// seconds, sample time = now, each message its own gzipped record batch keyed by node at the
// agent's default level (as `strata agent` publishes). Nodes are spread over the interval in 20
// slots, as real agents start at different moments.
// Prints `{"produced": <messages>, "entity_samples": <n>, "late_slots": <n>}` when done.
import { parseArgs } from 'node:util';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { KafkaConfig as AgentKafkaConfig } from '../agent/config.ts';
import { installGzipCodec } from '../lib/kafka/gzip.ts';
import { fixIdleRequestQueue } from '../lib/kafka/request-queue.ts';
import { costMessage, MESSAGE_KINDS, type MessageKind } from './pipeline-cost-messages.ts';

const { values } = parseArgs({
  options: {
    brokers: { type: 'string', default: '127.0.0.1:19092' },
    topic: { type: 'string' },
    prefix: { type: 'string', default: 'cost' },
    nodes: { type: 'string', default: '50' },
    entities: { type: 'string', default: '21' },
    'interval-ms': { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '60' },
    messages: { type: 'string', default: 'recorded' },
  },
});
const kind = values.messages as MessageKind;
if (!values.topic || !MESSAGE_KINDS.includes(kind)) {
  process.stderr.write(
    `pipeline-cost-load: --topic is required; --messages accepts ${MESSAGE_KINDS.join(', ')}\n`,
  );
  process.exit(2);
}
const NODES = Number(values.nodes);
const ENTITIES = Number(values.entities);
const INTERVAL = Number(values['interval-ms']);
const TICKS = Math.max(1, Math.round((Number(values.seconds) * 1000) / INTERVAL));

installGzipCodec(AgentKafkaConfig.parse({}).gzipLevel);
fixIdleRequestQueue();
const kafka = new Kafka({
  clientId: 'strata-bench-cost-load',
  brokers: [values.brokers],
  logLevel: logLevel.NOTHING,
});
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();

const SLOTS = 20;
const slotMs = INTERVAL / SLOTS;
const t0 = Math.ceil(Date.now() / 1000) * 1000 + 1000;
let produced = 0;
let samples = 0;
let late = 0;
for (let t = 0; t < TICKS; t++) {
  for (let slot = 0; slot < SLOTS; slot++) {
    const due = t0 + t * INTERVAL + slot * slotMs;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else if (wait < -slotMs) late++;
    const sends = [];
    for (let n = slot; n < NODES; n += SLOTS) {
      const m = costMessage(kind, values.prefix as string, n, t, Date.now(), ENTITIES, INTERVAL);
      samples += m.samples.length;
      sends.push(
        producer.send({
          topic: values.topic as string,
          compression: CompressionTypes.GZIP,
          messages: [{ key: m.node.id, value: JSON.stringify(m) }],
        }),
      );
    }
    await Promise.all(sends);
    produced += sends.length;
  }
}
await producer.disconnect();
process.stdout.write(`${JSON.stringify({ produced, entity_samples: samples, late_slots: late })}\n`);
