import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeSampleMessage, SCHEMA_VERSION } from '../../schemas/sample.ts';

const good = {
  v: SCHEMA_VERSION,
  node: { id: 'node-a', hostname: 'node-a', labels: {} },
  ts: 1_763_000_000_000,
  interval_ms: 1000,
  seq: 0,
  agent: { version: '0.1.0', run_id: 'r1' },
  samples: [
    {
      entity: { layer: 'host', kind: 'node', id: 'node-a', name: 'node-a', labels: {} },
      counters: { cpu_user_usec_total: 1234 },
      gauges: { cpu_count: 2 },
    },
  ],
};

describe('sample message schema', () => {
  it('accepts a valid message and fills defaults', () => {
    const r = decodeSampleMessage(JSON.stringify(good));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.message.samples[0]?.counters.cpu_user_usec_total).toBe(1234);
  });

  it('rejects an unknown schema version, naming the field', () => {
    const r = decodeSampleMessage(JSON.stringify({ ...good, v: 99 }));
    expect(r).toEqual({
      ok: false,
      code: 'schema_version',
      reason: expect.stringMatching(/^v: unsupported schema version 99/),
    });
  });

  it('rejects a missing field, naming it', () => {
    const { node: _node, ...rest } = good;
    const r = decodeSampleMessage(JSON.stringify(rest));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/^node: /);
  });

  it('rejects a wrong type, naming the nested field', () => {
    const bad = structuredClone(good) as unknown as { samples: { counters: Record<string, unknown> }[] };
    bad.samples[0]!.counters.cpu_user_usec_total = 'lots';
    const r = decodeSampleMessage(JSON.stringify(bad));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/^samples\.0\.counters\.cpu_user_usec_total: .*number/);
  });

  it('rejects an unknown layer and unknown fields', () => {
    const bad = structuredClone(good) as unknown as { samples: { entity: { layer: string } }[]; extra: 1 };
    bad.samples[0]!.entity.layer = 'hypervisor';
    bad.extra = 1;
    const r = decodeSampleMessage(JSON.stringify(bad));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toContain('samples.0.entity.layer');
      expect(r.reason).toContain('unknown field(s) extra');
    }
  });

  it('rejects non-JSON and non-objects', () => {
    expect(decodeSampleMessage('{nope')).toMatchObject({
      ok: false,
      code: 'not_json',
      reason: expect.stringMatching(/^not JSON/),
    });
    expect(decodeSampleMessage('[1]')).toEqual({
      ok: false,
      code: 'schema',
      reason: 'message is not a JSON object',
    });
    expect(decodeSampleMessage(null)).toEqual({ ok: false, code: 'empty', reason: 'empty message value' });
  });
});

describe('docs/wire-format.md', () => {
  it('its real example message is valid under the current schema', () => {
    const doc = readFileSync(new URL('../../docs/wire-format.md', import.meta.url), 'utf8');
    const block = /```json\n([\s\S]*?)\n```/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const r = decodeSampleMessage(block!);
    expect(r).toMatchObject({ ok: true });
    if (r.ok) expect(r.message.samples[0]?.entity.layer).toBe('host');
  });
});
