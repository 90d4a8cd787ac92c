// Which config file agent, processor and run read (lib/config.ts chooseConfigFile/fileLayer):
// --config, else STRATA_CONFIG, else /etc/strata/strata.yaml only when it exists. A file the user
// named must exist; the default file is optional and may hold only the other component's section.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseConfigFile, DEFAULT_CONFIG_FILE, fileLayer } from '../../lib/config.ts';
import { ConfigError } from '../../lib/errors.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'strata-config-choice-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const noWarn = () => {};
const shared = file('strata.yaml', 'processor:\n  kafka:\n    groupId: g1\n');
const missing = path.join(dir, 'missing.yaml');

describe('chooseConfigFile', () => {
  it('defaults to /etc/strata/strata.yaml', () => {
    expect(DEFAULT_CONFIG_FILE).toBe('/etc/strata/strata.yaml');
  });

  it('--config wins over STRATA_CONFIG, which wins over the default file; both are explicit', () => {
    const other = file('other.yaml', 'agent: {}\n');
    expect(chooseConfigFile(other, { STRATA_CONFIG: shared }, shared)).toEqual({
      file: other,
      namedBy: '--config',
      explicit: true,
    });
    expect(chooseConfigFile(undefined, { STRATA_CONFIG: other }, shared)).toEqual({
      file: other,
      namedBy: 'STRATA_CONFIG',
      explicit: true,
    });
  });

  it('reads the default file only when it exists; STRATA_CONFIG="" reads none', () => {
    expect(chooseConfigFile(undefined, {}, shared)).toEqual({
      file: shared,
      namedBy: 'default config file',
      explicit: false,
    });
    expect(chooseConfigFile(undefined, {}, missing).file).toBeUndefined();
    expect(chooseConfigFile(undefined, { STRATA_CONFIG: '' }, shared).file).toBeUndefined();
  });
});

describe('fileLayer with the default file', () => {
  it('takes settings from the default file, naming it as their source', () => {
    const layers = fileLayer(undefined, 'processor', [], noWarn, false, {}, shared);
    expect(layers.raw).toEqual({ kafka: { groupId: 'g1' } });
    expect(layers.sources.get('kafka.groupId')).toBe(`config file ${shared}`);
  });

  it('starts with nothing when the default file does not exist', () => {
    const layers = fileLayer(undefined, 'agent', [], noWarn, true, {}, missing);
    expect(layers.raw).toEqual({});
    expect(layers.sources.size).toBe(0);
  });

  it('accepts a default file without this section (shared by agent and processor); a named one is refused', () => {
    expect(fileLayer(undefined, 'agent', [], noWarn, true, {}, shared).raw).toEqual({});
    expect(() => fileLayer(shared, 'agent', [], noWarn, true, {}, missing)).toThrow(
      `--config ${shared}: no "agent:" section`,
    );
  });

  it('refuses a named file that is missing, saying how it was named', () => {
    expect(() => fileLayer(missing, 'agent', [], noWarn, false, {}, shared)).toThrow(
      new ConfigError(
        `--config ${missing}: cannot read the file (ENOENT: no such file or directory, open '${missing}'); pass an existing YAML or JSON file`,
      ),
    );
    expect(() =>
      fileLayer(undefined, 'processor', [], noWarn, false, { STRATA_CONFIG: missing }, shared),
    ).toThrow(`STRATA_CONFIG ${missing}: cannot read the file`);
  });

  it('refuses a default file that exists but cannot be read, naming the way out', () => {
    // A directory where the file should be: exists, cannot be read as a file (as root, a mode
    // 0600 file would still be readable).
    const notAFile = path.join(dir, 'as-dir');
    mkdirSync(notAFile);
    expect(() => fileLayer(undefined, 'processor', [], noWarn, false, {}, notAFile)).toThrow(
      /^default config file .*: cannot read the file \(EISDIR.*\); make it readable by this user, or set STRATA_CONFIG="" to read no file$/,
    );
  });
});
