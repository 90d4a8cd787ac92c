// The processor's `pipeline` section has its own schema (processors/config.ts); loading the
// processor's config checks it, so --print-config and the start name a wrong key or value before
// any server is contacted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProcessorConfig } from '../../processor/config.ts';

function configFile(yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pipeline-config-'));
  const file = path.join(dir, 'strata.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

describe('processor.pipeline in the processor config', () => {
  it('names a wrong value with the accepted ones', () => {
    const file = configFile('processor:\n  pipeline:\n    output:\n      zeroRates: maybe\n');
    expect(() => loadProcessorConfig({ config: file }, {})).toThrow(
      /processor\.pipeline\.output\.zeroRates: "maybe" is not accepted; accepted: "write", "skip"/,
    );
  });

  it('accepts a right one as written', () => {
    const file = configFile('processor:\n  pipeline:\n    output:\n      zeroRates: skip\n');
    expect(loadProcessorConfig({ config: file }, {}).config.pipeline).toEqual({
      output: { zeroRates: 'skip' },
    });
  });
});
