// Sustained load for perf:processor's `sustained` phase, run as its own process so its CPU is
// not billed to the processor: `--nodes` agents publish one tick per second each for `--seconds`
// seconds, sample time = now, each tick its own gzipped record batch keyed by node (as
// `strata agent` publishes). The nodes are spread over the second, as real agents are (they start
// at different moments), rather than all at the same instant.
// Prints `{"produced": <messages>, "late_ticks": <n>}` on stdout when done.
import { parseArgs } from 'node:util';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { KafkaConfig as AgentKafkaConfig } from '../agent/config.ts';
import { installGzipCodec } from '../lib/kafka/gzip.ts';
import { fixIdleRequestQueue } from '../lib/kafka/request-queue.ts';
import { tick } from './processor-messages.ts';

const { values } = parseArgs({
  options: {
    brokers: { type: 'string', default: '127.0.0.1:19092' },
    topic: { type: 'string' },
    prefix: { type: 'string', default: 'sustained' },
    nodes: { type: 'string', default: '200' },
    containers: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '40' },
  },
});
if (!values.topic) {
  process.stderr.write('processor-load: --topic is required\n');
  process.exit(2);
}
const NODES = Number(values.nodes);
const CONTAINERS = Number(values.containers);
const SECONDS = Number(values.seconds);

installGzipCodec(AgentKafkaConfig.parse({}).gzipLevel);
fixIdleRequestQueue(); // as the agents do
const kafka = new Kafka({
  clientId: 'strata-bench-load',
  brokers: [values.brokers],
  logLevel: logLevel.NOTHING,
});
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();

// Slots: the second is cut into 20 slots of 50 ms; node n publishes in slot n mod 20.
const SLOTS = 20;
const slotMs = 1000 / SLOTS;
const t0 = Math.ceil(Date.now() / 1000) * 1000 + 1000;
let produced = 0;
let late = 0;
for (let t = 0; t < SECONDS; t++) {
  for (let slot = 0; slot < SLOTS; slot++) {
    const due = t0 + t * 1000 + slot * slotMs;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else if (wait < -slotMs) late++;
    const sends = [];
    for (let n = slot; n < NODES; n += SLOTS) {
      const m = tick(values.prefix as string, n, t, Date.now(), CONTAINERS);
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
process.stdout.write(`${JSON.stringify({ produced, late_ticks: late })}\n`);
