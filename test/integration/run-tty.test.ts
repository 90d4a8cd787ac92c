// `strata run` (what `npm start` runs) in a real pseudo-terminal (util-linux `script`), with a
// container running on the stack's Docker engine: the host layer and the container (by name)
// appear on screen, and Ctrl-C typed into the terminal ends it with exit status 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { dockerRequest } from '../../stack/index.ts';

const dockerHost = inject('dockerHost');
const socketPath = dockerHost.replace(/^unix:\/\//, '');
const image = inject('dockerImage');
const influxUrl = inject('influxUrl');
const name = `strata-run-test-${randomUUID().slice(0, 8)}`;
let child: ChildProcess | undefined;

afterAll(async () => {
  child?.kill('SIGKILL');
  await dockerRequest(socketPath, 'DELETE', `/containers/${name}?force=true`).catch(() => {});
});

/** The last full screen the program drew (each frame starts at the top-left, ESC[H). */
function lastFrame(output: string): string {
  const frames = output.split('\x1b[H');
  return (frames[frames.length - 1] ?? '')
    .split('\x1b[K')
    .join('')
    .split('\x1b[J')
    .join('')
    .replace(/\r/g, '');
}

describe('strata run in a terminal', () => {
  it('shows the host layer and a Docker container, and exits 0 on Ctrl-C', async () => {
    const created = await dockerRequest(socketPath, 'POST', `/containers/create?name=${name}`, {
      Image: image,
      Cmd: ['sh', '-c', 'while true; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 0.2; done'],
    });
    expect(created.status, created.body).toBe(201);
    expect((await dockerRequest(socketPath, 'POST', `/containers/${name}/start`)).status).toBe(204);

    // `script` gives the program a real pty; what we write to script's stdin is typed into it.
    child = spawn(
      'script',
      ['-qfec', 'stty cols 160 rows 50; exec node bin/strata.js run --interval 1s', '/dev/null'],
      {
        env: { ...process.env, DOCKER_HOST: dockerHost, STRATA_LOG_LEVEL: 'warn', TERM: 'xterm' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    // Wait (bounded) for a frame that has both layers with figures; tsx start-up and the first
    // tick come before, then rates need two ticks.
    const deadline = Date.now() + 60_000;
    let frame = '';
    while (Date.now() < deadline) {
      frame = lastFrame(output);
      if (/^host\s+\S+\s+\d/m.test(frame) && new RegExp(`^container\\s+${name}\\s+\\d`, 'm').test(frame))
        break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(frame).toMatch(/^host\s+\S+\s+\d+\.\d\d /m);
    expect(frame).toMatch(new RegExp(`^container\\s+${name}\\s+\\d+\\.\\d\\d `, 'm'));
    expect(frame).toMatch(
      /^ {2}containers \([1-9]\d*\)\s+use \d+\.\d\d of \d+\.\d\d busy host cores \(\d+ %\)/m,
    );

    // The container burns CPU in its loop: its CPU figure is a real, non-zero number.
    const cpu = Number(new RegExp(`^container\\s+${name}\\s+(\\d+\\.\\d+)`, 'm').exec(frame)?.[1]);
    expect(cpu).toBeGreaterThan(0);

    child.stdin!.write('\x03'); // Ctrl-C typed into the terminal
    expect(await exited).toBe(0);
    // The terminal is given back: cursor shown, alternate screen left.
    expect(output).toContain('\x1b[?25h\x1b[?1049l');
    child = undefined;
  });

  it('says on screen that InfluxDB writes fail and why; q quits, the terminal is restored', async () => {
    // A database that does not exist: the real InfluxDB answers every write with 404
    // {"error":"database not found: ..."} and its X-Influxdb-Version header.
    const missing = `strata_missing_${randomUUID().slice(0, 8)}`;
    child = spawn(
      'script',
      [
        '-qfec',
        `stty cols 80 rows 24; exec node bin/strata.js run --collectors host --influx-url ${influxUrl} --influx-bucket ${missing}`,
        '/dev/null',
      ],
      { env: { ...process.env, STRATA_LOG_LEVEL: 'silent', TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !/WRITES FAILING[\s\S]*\nLAYER/.test(lastFrame(output))) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const frame = lastFrame(output);
    const status = frame.split('\n')[1] ?? '';
    expect(status).toMatch(/^!! InfluxDB http:\/\/127\.0\.0\.1:\d+: WRITES FAILING for \d+ s/);
    expect(frame.replace(/\s+/g, ' ')).toContain(`HTTP 404: database not found: "${missing}"`);
    for (const line of frame.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(frame.split('\n').length).toBeLessThanOrEqual(24);

    child.stdin!.write('q');
    expect(await exited).toBe(0);
    const after = output.slice(output.lastIndexOf('\x1b[?1049l'));
    expect(output).toContain('\x1b[?25h\x1b[?1049l');
    // What failed is said once more on the normal screen, after the view is gone.
    expect(after).toMatch(/strata run: InfluxDB .*WRITES FAILING/);
    child = undefined;
  });
});
