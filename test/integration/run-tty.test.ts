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
const name = `strata-run-test-${randomUUID().slice(0, 8)}`;
let child: ChildProcess | undefined;

afterAll(async () => {
  child?.kill('SIGKILL');
  await dockerRequest(socketPath, 'DELETE', `/containers/${name}?force=true`).catch(() => {});
});

/** The last full screen the program drew (it clears with ESC[H ESC[2J before each frame). */
function lastFrame(output: string): string {
  const frames = output.split('\x1b[H\x1b[2J');
  return frames[frames.length - 1] ?? '';
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
    expect(frame).toMatch(/layers: host, [1-9]\d* containers?/);

    // The container burns CPU in its loop: its CPU figure is a real, non-zero number.
    const cpu = Number(new RegExp(`^container\\s+${name}\\s+(\\d+\\.\\d+)`, 'm').exec(frame)?.[1]);
    expect(cpu).toBeGreaterThan(0);

    child.stdin!.write('\x03'); // Ctrl-C typed into the terminal
    expect(await exited).toBe(0);
    child = undefined;
  });
});
