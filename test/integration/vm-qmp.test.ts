// The QMP client and the vm collector's discovery against real QEMU processes with no guest
// (`-machine none`: a QMP server in ~30 MB that starts in well under a second).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Accumulator } from '../../collectors/types.ts';
import { parseVmConfig, VmCollector, VmDirectory } from '../../collectors/vm/index.ts';
import { QmpClient, QmpCommandError } from '../../collectors/vm/qmp.ts';
import { ConfigError, ConnectionError } from '../../lib/errors.ts';
import { EntitySample } from '../../schemas/sample.ts';

let dir: string;
const procs = new Set<ChildProcess>();
const clients: QmpClient[] = [];

async function startQemu(socket: string, extra: string[] = []): Promise<ChildProcess> {
  await fs.rm(socket, { force: true });
  const p = spawn(
    'qemu-system-x86_64',
    [
      '-machine',
      'none',
      '-display',
      'none',
      '-nodefaults',
      '-qmp',
      `unix:${socket},server=on,wait=off`,
      ...extra,
    ],
    { stdio: 'ignore' },
  );
  procs.add(p);
  p.on('exit', () => procs.delete(p));
  for (let i = 0; i < 100; i++) {
    if (
      await fs.stat(socket).then(
        (s) => s.isSocket(),
        () => false,
      )
    )
      return p;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`QEMU did not create ${socket}`);
}
async function stop(p: ChildProcess) {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGKILL');
  await once(p, 'exit');
}
function client(socketPath: string, opts: Partial<ConstructorParameters<typeof QmpClient>[0]> = {}) {
  const c = new QmpClient({ socketPath, minBackoffMs: 50, ...opts });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-qmp-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const p of [...procs]) {
    p.kill('SIGCONT');
    await stop(p);
  }
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('QMP client against real QEMU', () => {
  it('negotiates, matches concurrent replies by id, ignores events, and reports command errors', async () => {
    const sock = path.join(dir, 'a.sock');
    await startQemu(sock, ['-name', 'qmp-a']);
    const c = client(sock);
    const version = await c.execute<{ qemu: { major: number } }>('query-version');
    expect(version.qemu.major).toBeGreaterThanOrEqual(7);
    expect(c.greeting?.capabilities).toBeDefined();
    const names = await Promise.all(
      Array.from({ length: 20 }, () => c.execute<{ name: string }>('query-name')),
    );
    expect(names.map((n) => n.name)).toEqual(Array(20).fill('qmp-a'));

    await c.execute('stop'); // emits a STOP event
    await c.execute('cont'); // emits RESUME
    expect((await c.execute<{ status: string }>('query-status')).status).toBe('running');
    expect(c.eventsIgnored).toBeGreaterThanOrEqual(2);

    const err = await c.execute('no-such-command').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpCommandError);
    expect((err as QmpCommandError).qmpClass).toBe('CommandNotFound');
    expect((await c.execute<{ name: string }>('query-name')).name).toBe('qmp-a');
    expect(c.connects).toBe(1);
  });

  it('times out on a stopped QEMU, then reconnects once it runs again', async () => {
    const sock = path.join(dir, 'b.sock');
    const p = await startQemu(sock);
    const c = client(sock, { commandTimeoutMs: 300 });
    await c.execute('query-status');
    p.kill('SIGSTOP');
    const err = await c.execute('query-status').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toMatch(/no reply within 300 ms/);
    p.kill('SIGCONT');
    for (let i = 0; i < 50 && !c.connected; i++) {
      await c.execute('query-status').catch(() => undefined);
      if (!c.connected) await new Promise((r) => setTimeout(r, 100));
    }
    expect(c.connects).toBe(2);
    expect((await c.execute<{ running: boolean }>('query-status')).running).toBe(true);
  });

  it('reconnects to a QEMU restarted on the same socket, and explains a busy or missing socket', async () => {
    const sock = path.join(dir, 'c.sock');
    let p = await startQemu(sock, ['-name', 'first']);
    const c = client(sock);
    expect((await c.execute<{ name: string }>('query-name')).name).toBe('first');

    // QEMU serves one client per socket: a second one never gets a greeting.
    const second = client(sock, { connectTimeoutMs: 500 });
    await expect(second.execute('query-status')).rejects.toThrow(
      /no QMP greeting within 500 ms.*one QMP client/,
    );

    await stop(p);
    await expect(c.execute('query-name')).rejects.toBeInstanceOf(ConnectionError);
    p = await startQemu(sock, ['-name', 'second']);
    let name: string | undefined;
    for (let i = 0; i < 50 && !name; i++) {
      name = await c.execute<{ name: string }>('query-name').then(
        (r) => r.name,
        () => undefined,
      );
      if (!name) await new Promise((r) => setTimeout(r, 100));
    }
    expect(name).toBe('second');

    const missing = client(path.join(dir, 'absent.sock'));
    await expect(missing.execute('query-status')).rejects.toThrow(
      /absent\.sock: .*ENOENT.*-qmp unix:.*absent\.sock,server=on,wait=off/,
    );
  });
});

describe('vm collector discovery on real QEMU processes', () => {
  it('finds sockets by glob, the PID by command line, and falls back to the socket name for the id', async () => {
    const sock = path.join(dir, 'qmp', 'noname.sock');
    await fs.mkdir(path.dirname(sock), { recursive: true });
    const p = await startQemu(sock);
    const directory = new VmDirectory();
    const vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'q*', '*.sock')] }), {
      nodeId: 'n1',
      directory,
    });
    await vmc.start();
    const samples: EntitySample[] = [];
    const errors: string[] = [];
    const acc: Accumulator = {
      add: (s) => samples.push(EntitySample.parse(s)),
      error: (_s, k) => errors.push(k),
    };
    await vmc.gather(acc);
    await vmc.shutdown();
    expect(errors).toEqual([]);
    expect(samples).toHaveLength(1);
    const s = samples[0]!;
    expect(s.entity).toMatchObject({
      layer: 'vm',
      kind: 'qemu',
      id: 'noname',
      name: 'noname',
      parent: { layer: 'host', id: 'n1' },
    });
    expect(s.counters.cpu_usage_usec_total).toBeGreaterThanOrEqual(0);
    expect(s.gauges.memory_rss_bytes).toBeGreaterThan(1024 * 1024);
    expect(s.devices).toEqual({});
    expect(directory.list()).toEqual([]); // shutdown clears what the guest collector sees
    expect(p.pid).toBeDefined();
  });

  it('keeps ticking while the QMP socket is held by another client, and picks the VM up once it is free', async () => {
    const sock = path.join(dir, 'busy', 'held.sock');
    await fs.mkdir(path.dirname(sock), { recursive: true });
    await startQemu(sock, ['-name', 'held']);
    const holder = client(sock);
    await holder.execute('query-status'); // like libvirtd on monitor.sock
    const vmc = new VmCollector(parseVmConfig({ qmpSockets: [path.join(dir, 'busy', '*.sock')] }), {
      nodeId: 'n1',
      directory: new VmDirectory(),
    });
    await vmc.start();
    const tick = async () => {
      const samples: EntitySample[] = [];
      const errors: string[] = [];
      await vmc.gather({ add: (s) => samples.push(EntitySample.parse(s)), error: (_s, k) => errors.push(k) });
      return { samples, errors };
    };
    try {
      const first = await tick();
      expect(first.samples).toEqual([]);
      expect(first.errors).toEqual([`vm:${sock}:connect`]);
      holder.close();
      let got: EntitySample | undefined;
      for (let i = 0; i < 100 && !got; i++) {
        got = (await tick()).samples[0];
        if (!got) await new Promise((r) => setTimeout(r, 100));
      }
      expect(got?.entity).toMatchObject({ id: 'held', name: 'held' });
    } finally {
      await vmc.shutdown();
    }
  });

  it('rejects a misspelt config key, naming the accepted keys', () => {
    expect(() => parseVmConfig({ qmp_socket: [] })).toThrow(ConfigError);
    expect(() => parseVmConfig({ qmp_socket: [] })).toThrow(
      /collectors\.vm\.qmp_socket: unknown key; accepted keys: enabled, qmpSockets/,
    );
  });
});
