// Config files: any YAML/JSON document given to the agent's and the processor's loaders
// (agent/config.ts loadAgentConfig, processor/config.ts resolveProcessorConfig) and any
// value given to lib/config.ts parseConfig (processors/config.ts parsePipelineConfig) must load or
// give a ConfigError naming the problem, never another exception.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadAgentConfig } from '../../agent/config.ts';
import { collectorSchemas, defaultCollectors } from '../../collectors/registry.ts';
import { ConfigError } from '../../lib/errors.ts';
import { resolveProcessorConfig } from '../../processor/config.ts';
import { parsePipelineConfig } from '../../processors/config.ts';
import type { FuzzTarget } from './harness.ts';

const KEYS = [
  'agent',
  'processor',
  'kafka',
  'brokers',
  'topic',
  'collectors',
  'host',
  'cgroup',
  'vm',
  'guest',
  'docker',
  'interval',
  'output',
  'buffer',
  'influxdb',
  'url',
  'pipeline',
  'rates',
  'overhead',
  'noisyNeighbor',
  'evictAfterMs',
  'maxEntities',
  'gzipLevel',
  'compression',
  'ssl',
  'sasl',
  '__proto__',
  'constructor',
  'toString',
  '',
];

const leaf = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, '', '1s', 'x', 'gzip', '127.0.0.1:9092', [], {}),
  fc.string({ maxLength: 8 }),
  fc.double(),
);
const doc = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    tie('obj'),
    fc.array(tie('node'), { maxLength: 3 }),
  ),
  obj: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 })), tie('node'), {
    maxKeys: 4,
  }),
})).node;

const YAML_HOSTILE = [
  'agent: &a [*a]',
  'agent: !!binary aGVsbG8=',
  'agent:\n  <<: {kafka: {brokers: 5}}',
  'agent: {kafka: !!set {a, b}}',
  'processor: !!timestamp 2001-12-14',
  '%YAML 1.2\n---\nagent: {}\n---\nagent: {}',
  'a: &x [1]\nb: [*x, *x, *x, *x]\nagent: {interval: *x}',
  'agent: {interval: .inf}',
  'agent:\n\tinterval: 1',
  '{"agent": {"__proto__": {"interval": 1}}}',
  'agent: {collectors: {host: [1]}}',
  'processor: {kafka: null, influxdb: 7}',
];

const text = fc.oneof(
  {
    arbitrary: fc.record({ agent: doc, processor: doc }, { requiredKeys: [] }).map((d) => stringify(d)),
    weight: 4,
  },
  { arbitrary: doc.map((d) => JSON.stringify(d) ?? 'null'), weight: 2 },
  { arbitrary: fc.constantFrom(...YAML_HOSTILE), weight: 1 },
  { arbitrary: fc.string({ maxLength: 60 }), weight: 1 },
);

const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-fuzz-config-'));
const file = path.join(dir, 'strata.yaml');
const schemas = collectorSchemas();
const defaults = defaultCollectors();

function configErrorOrValue(what: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      throw new Error(`${what}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, {
        cause: err,
      });
    }
  }
}

export const targets: FuzzTarget[] = [
  {
    name: 'config: agent and processor files give a config or a ConfigError',
    property: () =>
      fc.property(text, (t) => {
        writeFileSync(file, t);
        configErrorOrValue('agent', () =>
          loadAgentConfig({
            configFile: file,
            collectorSchemas: schemas,
            defaultCollectors: defaults,
            env: {},
          }),
        );
        configErrorOrValue('processor', () => resolveProcessorConfig({ config: file }, {}));
      }),
    // Each case writes a file and builds both loaders' zod schemas (~7 ms).
    weight: 0.1,
  },
  {
    name: 'config: pipeline section values give a config or a ConfigError',
    property: () => fc.property(doc, (d) => configErrorOrValue('pipeline', () => parsePipelineConfig(d))),
  },
];
