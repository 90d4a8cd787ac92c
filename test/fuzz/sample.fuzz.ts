// The Kafka sample decoder (schemas/sample.ts decodeSampleMessage) on real agent messages
// (testdata/processor), mutated, gzip-compressed (a value the agent's buffer left compressed) and
// arbitrary bytes: it returns ok or refused with a reason, never throws, and accepts only what the
// zod schema accepts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { decodeSampleMessage, SampleMessage } from '../../schemas/sample.ts';
import { type FuzzTarget, mutatedText, REPO } from './harness.ts';

const messages = ['noisy-quiet.ndjson.gz', 'vm-tcg.ndjson.gz', 'noisy-vm-victim.ndjson.gz']
  .flatMap((f) =>
    zlib
      .gunzipSync(readFileSync(path.join(REPO, 'testdata/processor', f)))
      .toString('utf8')
      .split('\n')
      .slice(0, 5),
  )
  .concat(
    readFileSync(path.join(REPO, 'testdata/processor/agent-host-1s.ndjson'), 'utf8').split('\n').slice(0, 3),
  )
  .filter(Boolean);

const value: fc.Arbitrary<Buffer | string | null | undefined> = fc.oneof(
  { arbitrary: mutatedText(messages), weight: 6 },
  { arbitrary: mutatedText(messages).map((t) => zlib.gzipSync(t, { level: 1 })), weight: 1 },
  { arbitrary: fc.constantFrom(...messages), weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), weight: 1 },
  fc.constantFrom(null, undefined, '', '{"v":1,"__proto__":{}}', '[]', 'null'),
);

export const targets: FuzzTarget[] = [
  {
    name: 'sample decoder: ok or refused with a reason',
    property: () =>
      fc.property(value, (v) => {
        const r = decodeSampleMessage(v);
        if (r.ok) {
          const again = SampleMessage.safeParse(
            JSON.parse(typeof v === 'string' ? v : (v as Buffer).toString('utf8')),
          );
          if (!again.success) throw new Error('accepted a message the schema refuses');
        } else if (typeof r.reason !== 'string' || r.reason === '') {
          throw new Error('refused without a reason');
        }
      }),
  },
];
