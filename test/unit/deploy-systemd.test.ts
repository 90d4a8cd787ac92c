// deploy/systemd is what users install on hosts without a container runtime. systemd itself is not
// PID 1 here, so this test does what systemd would do with each unit: take ExecStart's argv and
// the environment the unit builds (its Environment= lines, then the EnvironmentFile it names, as
// shipped in deploy/systemd/*.env), and run that command line on the real CLI with --print-config,
// a temporary HOME and no /etc/strata/strata.yaml. The units must start from the env file alone; a
// config file named explicitly and missing must still fail, with exit 2, which the units do not
// restart on. `systemd-analyze verify` checks every directive where it is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENV_VARS as AGENT_ENV } from '../../agent/config.ts';
import { DEFAULT_CONFIG_FILE } from '../../lib/config.ts';
import { KAFKA_SECURITY_ENV_NAMES } from '../../lib/kafka/security.ts';
import { ENV_KEYS as PROCESSOR_ENV } from '../../processor/config.ts';

const repo = path.resolve(import.meta.dirname, '../..');
const STRATA = path.join(repo, 'bin/strata.js');
/** Where the units expect strata to be installed. */
const INSTALL_DIR = '/opt/strata';
const home = mkdtempSync(path.join(tmpdir(), 'strata-systemd-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** One unit file: section -> key -> values in order (a key may repeat, e.g. Environment=). */
type Unit = Map<string, Map<string, string[]>>;

function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

/** KEY=VALUE lines of an env file (systemd's EnvironmentFile= format, without quoting). */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

const read = (file: string) => readFileSync(path.join(repo, 'deploy/systemd', file), 'utf8');
const service = (unit: Unit) => unit.get('Service') ?? new Map<string, string[]>();
const one = (unit: Unit, key: string) => {
  const v = service(unit).get(key);
  expect(v, key).toHaveLength(1);
  return v![0]!;
};

/**
 * The environment systemd gives the service: Environment= lines, then the EnvironmentFile (the
 * example shipped beside the unit, installed where the unit reads it), over a bare PATH and HOME.
 */
function unitEnv(unit: Unit, envFile: string): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
  for (const assignment of service(unit).get('Environment') ?? []) {
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  Object.assign(env, parseEnvFile(read(envFile)));
  // The units run the bundle (STRATA_BUNDLE=1), a build of these sources: the test runs the
  // sources themselves, so it checks this tree and not whatever dist/ was built last.
  env.STRATA_BUNDLE = '0';
  env.STRATA_LOG_LEVEL = 'silent';
  return env;
}

/** ExecStart's argv, with the installed node and /opt/strata/bin/strata.js mapped to this checkout. */
function execArgv(unit: Unit): string[] {
  const [node, ...args] = one(unit, 'ExecStart').split(/\s+/);
  expect(node).toBe('/usr/bin/node');
  return args.map((a) => (a === `${INSTALL_DIR}/bin/strata.js` ? STRATA : a));
}

function runUnit(unit: Unit, envFile: string, extra: string[], envOverride: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [...execArgv(unit), ...extra], {
    cwd: home,
    env: { ...unitEnv(unit, envFile), ...envOverride },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Each CLI start is ≈ 0.7 s alone; on a machine busy with other work it takes several. */
const CLI_TEST = { timeout: 60_000 };

const UNITS = [
  {
    name: 'strata-agent.service',
    envFile: 'strata-agent.env',
    command: 'agent',
    accepted: new Set([...AGENT_ENV.map((e) => e.env), ...KAFKA_SECURITY_ENV_NAMES, 'STRATA_LOG_LEVEL']),
  },
  {
    name: 'strata-processor.service',
    envFile: 'strata-processor.env',
    command: 'processor',
    accepted: new Set([...Object.keys(PROCESSOR_ENV), ...KAFKA_SECURITY_ENV_NAMES, 'STRATA_LOG_LEVEL']),
  },
] as const;

describe.each(UNITS)('deploy/systemd/$name', ({ name, envFile, command, accepted }) => {
  const unit = parseUnit(read(name));

  it(
    'starts from the env file alone: ExecStart with --print-config is accepted, settings from the env file',
    CLI_TEST,
    () => {
      expect(existsSync(DEFAULT_CONFIG_FILE), `${DEFAULT_CONFIG_FILE} exists on this machine`).toBe(false);
      expect(service(unit).get('EnvironmentFile')).toEqual([`-/etc/default/${name.replace('.service', '')}`]);
      const args = execArgv(unit);
      expect(args).toContain(command);
      const r = runUnit(unit, envFile, ['--print-config']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const printed = JSON.parse(r.stdout) as {
        config: { kafka: { brokers: string[] }; influxdb?: { token?: string } };
        sources: Record<string, string>;
      };
      expect(printed.config.kafka.brokers).toEqual(['kafka-1:9092', 'kafka-2:9092']);
      expect(printed.sources['kafka.brokers']).toBe('env KAFKA_BROKERS');
      expect(Object.values(printed.sources).join(' ')).not.toContain('config file');
      if (command === 'processor') {
        expect(printed.sources['influxdb.token']).toBe('env INFLUX_TOKEN');
        expect(r.stdout).not.toContain('change-me');
      }
    },
  );

  it('sets only env vars the component reads', () => {
    const env = parseEnvFile(read(envFile));
    for (const assignment of service(unit).get('Environment') ?? []) {
      const key = assignment.slice(0, assignment.indexOf('='));
      if (key !== 'STRATA_BUNDLE') env[key] = '';
    }
    expect(Object.keys(env).length).toBeGreaterThan(1);
    for (const key of Object.keys(env)) expect(accepted, `${name} env ${key}`).toContain(key);
  });

  it(
    'an explicit --config or STRATA_CONFIG naming a missing file exits 2 with the path, and exit 2 is not restarted',
    CLI_TEST,
    () => {
      const missing = path.join(home, 'nowhere', 'strata.yaml');
      for (const [extra, env, namedBy] of [
        [['--config', missing, '--print-config'], {}, '--config'],
        [['--print-config'], { STRATA_CONFIG: missing }, 'STRATA_CONFIG'],
      ] as const) {
        const r = runUnit(unit, envFile, [...extra], env);
        expect(r.status, `${namedBy}: ${r.stderr}`).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr).toBe(
          `strata: ${namedBy} ${missing}: cannot read the file (ENOENT: no such file or directory, open '${missing}'); pass an existing YAML or JSON file\n`,
        );
      }
      expect(one(unit, 'Restart')).toBe('on-failure');
      expect(one(unit, 'RestartPreventExitStatus').split(/\s+/)).toContain('2');
      expect(Number(one(unit, 'RestartSec'))).toBeGreaterThan(0);
    },
  );

  it('is hardened and bounded: read-only system, no privilege gain, a memory cap', () => {
    expect(one(unit, 'NoNewPrivileges')).toBe('yes');
    expect(one(unit, 'ProtectSystem')).toBe('strict');
    expect(one(unit, 'MemoryMax')).toMatch(/^\d+M$/);
  });

  it('passes systemd-analyze verify where systemd is installed', () => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.error) return; // no systemd on this machine: the parser above is the check
    const r = spawnSync('systemd-analyze', ['verify', path.join(repo, 'deploy/systemd', name)], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
