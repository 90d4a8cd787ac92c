// Agent configuration: layering (defaults < file < env < flags) and errors that name the key,
// the layer it came from and what is accepted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { flagName, loadAgentConfig } from '../../agent/config.ts';
import { registerAgentCommand } from '../../cli/agent.ts';
import { collectorSchemas, defaultCollectors } from '../../collectors/registry.ts';
import { ConfigError } from '../../lib/errors.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-cfg-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

const base = { collectorSchemas: collectorSchemas(), defaultCollectors: defaultCollectors(), env: {} };

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('agent config', () => {
  it('has working defaults', () => {
    const { config, enabled } = loadAgentConfig(base);
    expect(config.interval).toBe(1000);
    expect(config.output).toBe('kafka');
    expect(config.kafka).toMatchObject({
      brokers: ['127.0.0.1:19092'],
      samplesTopic: 'strata.samples',
      compression: 'gzip',
      gzipLevel: 1,
    });
    expect(config.buffer.maxTicks).toBe(3600);
    expect(enabled).toContain('host');
  });

  it('layers file < env < flags and records where each key came from', () => {
    const f = file(
      'a.yaml',
      'agent:\n  interval: 5s\n  nodeId: from-file\n  kafka:\n    samplesTopic: file.topic\n    clientId: file-client\n',
    );
    const { config, sources } = loadAgentConfig({
      ...base,
      configFile: f,
      env: { STRATA_INTERVAL: '2s', KAFKA_BROKERS: 'k1:9092, k2:9093', STRATA_SAMPLES_TOPIC: 'env.topic' },
      flags: { interval: '500ms' },
    });
    expect(config.interval).toBe(500);
    expect(config.nodeId).toBe('from-file');
    expect(config.kafka.brokers).toEqual(['k1:9092', 'k2:9093']);
    expect(config.kafka.samplesTopic).toBe('env.topic');
    expect(config.kafka.clientId).toBe('file-client');
    expect(sources.get('interval')).toBe('flag --interval');
    expect(sources.get('kafka.samplesTopic')).toBe('env STRATA_SAMPLES_TOPIC');
    expect(sources.get('nodeId')).toBe(`config file ${f}`);
  });

  it('reads JSON config files too', () => {
    const f = file('a.json', JSON.stringify({ agent: { output: 'ndjson', buffer: { maxTicks: 10 } } }));
    const { config } = loadAgentConfig({ ...base, configFile: f });
    expect(config.output).toBe('ndjson');
    expect(config.buffer.maxTicks).toBe(10);
  });

  it('names an unknown key with the accepted keys and the file it is in', () => {
    const f = file('typo.yaml', 'agent:\n  kafka:\n    topcs: x\n');
    const msg = errorOf(() => loadAgentConfig({ ...base, configFile: f }));
    expect(msg).toContain('agent.kafka.topcs: unknown key; accepted keys: brokers, samplesTopic, clientId');
    expect(msg).toContain(`(set by config file ${f})`);
  });

  it('names a bad env value, its variable and the accepted values', () => {
    const msg = errorOf(() => loadAgentConfig({ ...base, env: { STRATA_KAFKA_COMPRESSION: 'snappy' } }));
    expect(msg).toMatch(/agent\.kafka\.compression: .*accepted: "gzip", "lz4", "zstd", "none"/);
    expect(msg).toContain('(set by env STRATA_KAFKA_COMPRESSION)');
  });

  it("takes the gzip level from env or flag and rejects one outside zlib's 1-9", () => {
    expect(loadAgentConfig({ ...base, env: { STRATA_KAFKA_GZIP_LEVEL: '6' } }).config.kafka.gzipLevel).toBe(
      6,
    );
    expect(loadAgentConfig({ ...base, flags: { 'kafka.gzipLevel': 9 } }).config.kafka.gzipLevel).toBe(9);
    const msg = errorOf(() => loadAgentConfig({ ...base, env: { STRATA_KAFKA_GZIP_LEVEL: '10' } }));
    expect(msg).toMatch(
      /agent\.kafka\.gzipLevel: expected a whole number from 1 to 9.*\(set by env STRATA_KAFKA_GZIP_LEVEL\)/,
    );
    // A word gets the same words, not zod's "expected number, received string".
    expect(errorOf(() => loadAgentConfig({ ...base, flags: { 'kafka.gzipLevel': 'abc' } }))).toMatch(
      /agent\.kafka\.gzipLevel: expected a whole number from 1 to 9.*\(set by flag --gzip-level\)/,
    );
  });

  it('rejects a bad duration and a non-numeric count, naming flag and key', () => {
    expect(errorOf(() => loadAgentConfig({ ...base, flags: { interval: 'fast' } }))).toMatch(
      /agent\.interval: "fast" is not a duration; use e\.g\. 500ms.*\(set by flag --interval\)/,
    );
    expect(errorOf(() => loadAgentConfig({ ...base, env: { STRATA_BUFFER_MAX_TICKS: 'lots' } }))).toMatch(
      /agent\.buffer\.maxTicks: .*number.*\(set by env STRATA_BUFFER_MAX_TICKS\)/,
    );
    expect(errorOf(() => loadAgentConfig({ ...base, env: { KAFKA_BROKERS: 'nohostport' } }))).toMatch(
      /agent\.kafka\.brokers\.0: expected host:port \(set by env KAFKA_BROKERS\)/,
    );
  });

  it('validates collector sub-configs with their own schema', () => {
    const f = file('col.yaml', 'agent:\n  collectors:\n    host:\n      pressur: false\n');
    expect(errorOf(() => loadAgentConfig({ ...base, configFile: f }))).toContain(
      'agent.collectors.host.pressur: unknown key; accepted keys: enabled, nodeId, disks, interfaces, pressure, ksm, inventory',
    );
    const g = file('col2.yaml', 'agent:\n  collectors:\n    hots: {}\n');
    expect(errorOf(() => loadAgentConfig({ ...base, configFile: g }))).toMatch(
      /agent\.collectors\.hots: unknown key; accepted keys: host/,
    );
  });

  it('selects collectors by list, keeping their file settings, and rejects unknown names', () => {
    const f = file('sel.yaml', 'agent:\n  collectors:\n    host:\n      pressure: false\n');
    const { config, enabled } = loadAgentConfig({
      ...base,
      configFile: f,
      env: { STRATA_COLLECTORS: 'host' },
    });
    expect(enabled).toEqual(['host']);
    expect((config.collectors as Record<string, { pressure: boolean }>).host?.pressure).toBe(false);
    expect(errorOf(() => loadAgentConfig({ ...base, flags: { '(collectors)': 'host,nope' } }))).toMatch(
      /flag --collectors: unknown collector\(s\) nope; accepted: host/,
    );
    const off = file('off.yaml', 'agent:\n  collectors:\n    host: false\n');
    expect(loadAgentConfig({ ...base, configFile: off }).enabled).not.toContain('host');
  });

  it('explains a missing or malformed config file', () => {
    expect(errorOf(() => loadAgentConfig({ ...base, configFile: path.join(dir, 'nope.yaml') }))).toMatch(
      /--config .*nope\.yaml: cannot read the file/,
    );
    const f = file('nosection.yaml', 'processor:\n  x: 1\n');
    expect(errorOf(() => loadAgentConfig({ ...base, configFile: f }))).toMatch(
      /no "agent:" section \(found: processor\)/,
    );
  });

  it('names the flag `strata agent` really has for every key a flag sets', () => {
    const program = new Command();
    registerAgentCommand(program);
    const agent = program.commands.find((c) => c.name() === 'agent');
    const flags = new Set(agent?.options.map((o) => o.long));
    const keys = [
      'nodeId',
      'interval',
      'collectTimeout',
      'output',
      'kafka.brokers',
      'kafka.samplesTopic',
      'kafka.clientId',
      'kafka.compression',
      'kafka.gzipLevel',
      'buffer.maxTicks',
      'buffer.maxBytes',
      'buffer.spillFile',
      'buffer.maxSpillBytes',
      'metricsListen',
      'shutdownTimeout',
    ];
    for (const key of keys) expect(flags, key).toContain(`--${flagName(key)}`);
    expect(flagName('kafka.clientId')).toBe('client-id');
    expect(errorOf(() => loadAgentConfig({ ...base, flags: { 'kafka.gzipLevel': 12 } }))).toContain(
      '(set by flag --gzip-level)',
    );
  });

  it('reads the old spelling kafka.topic as kafka.samplesTopic, with one deprecation line', () => {
    const f = file('old-topic.yaml', 'agent:\n  kafka:\n    topic: old.topic\n');
    const lines: string[] = [];
    const { config, sources } = loadAgentConfig({
      ...base,
      configFile: f,
      onDeprecated: (l) => lines.push(l),
    });
    expect(config.kafka.samplesTopic).toBe('old.topic');
    expect(sources.get('kafka.samplesTopic')).toBe(`config file ${f}`);
    expect(lines).toEqual([
      'agent.kafka.topic is now agent.kafka.samplesTopic; rename it (the old key still works)',
    ]);
    const both = file('both-topic.yaml', 'agent:\n  kafka:\n    topic: old\n    samplesTopic: new\n');
    lines.length = 0;
    expect(
      loadAgentConfig({ ...base, configFile: both, onDeprecated: (l) => lines.push(l) }).config.kafka
        .samplesTopic,
    ).toBe('new');
    expect(lines[0]).toContain('both are set, agent.kafka.samplesTopic wins');
  });

  it("never shows zod's own wording: an empty broker list and a tiny bare interval are explained", () => {
    expect(errorOf(() => loadAgentConfig({ ...base, env: { KAFKA_BROKERS: ' , ' } }))).toBe(
      'invalid configuration in agent:\n  agent.kafka.brokers: expected at least one broker (host:port, e.g. 127.0.0.1:19092) (set by env KAFKA_BROKERS)',
    );
    const msg = errorOf(() => loadAgentConfig({ ...base, env: { STRATA_INTERVAL: '1' } }));
    expect(msg).toContain(
      'agent.interval: expected at least 10ms (a bare number is milliseconds: write 1s for one second)',
    );
    expect(msg).not.toMatch(/Too small|Invalid input/);
    const f = file('types.yaml', 'agent:\n  nodeId: 12\n  kafka:\n    brokers: []\n    clientId: ""\n');
    const all = errorOf(() => loadAgentConfig({ ...base, configFile: f }));
    expect(all).toContain('agent.nodeId: expected a string, got a number');
    expect(all).toContain('agent.kafka.brokers: expected at least one broker');
    expect(all).toContain('agent.kafka.clientId: expected a non-empty value');
    expect(all).not.toMatch(/Too small|Invalid input|received/);
    expect(errorOf(() => loadAgentConfig({ ...base, env: { STRATA_KAFKA_COMPRESSION: 'zip' } }))).toBe(
      'invalid configuration in agent:\n  agent.kafka.compression: "zip" is not accepted; accepted: "gzip", "lz4", "zstd", "none" (set by env STRATA_KAFKA_COMPRESSION)',
    );
  });

  it('reads the snake_case collector keys as their camelCase spelling, one deprecation line each, at any depth', () => {
    const f = file(
      'snake.yaml',
      'agent:\n  collectors:\n    cgroup:\n      max_depth: 3\n      docker:\n        refresh_interval: 5s\n    vm:\n      max_vms: 7\n      maxVms: 9\n',
    );
    const lines: string[] = [];
    const { config } = loadAgentConfig({ ...base, configFile: f, onDeprecated: (l) => lines.push(l) });
    const c = config.collectors as Record<string, Record<string, unknown>>;
    expect(c.cgroup?.maxDepth).toBe(3);
    expect((c.cgroup?.docker as Record<string, unknown> | undefined)?.refreshInterval).toBe(5000);
    expect(c.vm?.maxVms).toBe(9);
    expect(lines).toEqual([
      'agent.collectors.cgroup.max_depth is now agent.collectors.cgroup.maxDepth; rename it (the old key still works)',
      'agent.collectors.cgroup.docker.refresh_interval is now agent.collectors.cgroup.docker.refreshInterval; rename it (the old key still works)',
      'agent.collectors.vm.max_vms is now agent.collectors.vm.maxVms; both are set, agent.collectors.vm.maxVms wins: remove agent.collectors.vm.max_vms',
    ]);
    // A snake_case key with no camelCase twin is still an unknown key.
    const g = file('snake-bad.yaml', 'agent:\n  collectors:\n    vm:\n      max_vmz: 1\n');
    expect(errorOf(() => loadAgentConfig({ ...base, configFile: g, onDeprecated: () => {} }))).toContain(
      'agent.collectors.vm.max_vmz: unknown key',
    );
  });
});
