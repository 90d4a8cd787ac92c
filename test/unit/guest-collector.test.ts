// The guest collector's connection handling, freshness and entity shape. The agent end is a unix
// socket server in the test that writes the records captured from the real test VM's
// virtio-serial socket (testdata/guest/idle.stream), at moments the test chooses.
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GuestCollector, parseGuestConfig } from '../../collectors/guest/index.ts';
import type { Accumulator } from '../../collectors/types.ts';
import { VmDirectory } from '../../collectors/vm/directory.ts';
import { ConfigError } from '../../lib/errors.ts';
import { EntitySample } from '../../schemas/sample.ts';

const stream = readFileSync('testdata/guest/idle.stream', 'latin1');
const records = stream.split(/(?=STRATA-GUEST )/); // 4 records, verbatim

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function agentServer() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-guest-'));
  const socket = path.join(dir, 'agent.sock');
  const conns: net.Socket[] = [];
  const server = net.createServer((c) => conns.push(c));
  await new Promise<void>((r) => server.listen(socket, r));
  cleanups.push(async () => {
    for (const c of conns) c.destroy();
    await new Promise((r) => server.close(r));
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { socket, conns };
}

async function until(what: string, cond: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function collect(c: GuestCollector) {
  return async () => {
    const samples: EntitySample[] = [];
    const errors: string[] = [];
    const acc: Accumulator = {
      add: (s) => samples.push(EntitySample.parse(s)),
      error: (_s, key) => errors.push(key),
    };
    await c.gather(acc);
    return { samples, errors };
  };
}

describe('guest collector', () => {
  it('publishes each new record once, parented to its vm, stamped with the receive time', async () => {
    const srv = await agentServer();
    const c = new GuestCollector(
      parseGuestConfig({ agents: [{ vmId: 'vm-1', name: 'web', socket: srv.socket }] }),
    );
    cleanups.push(() => c.shutdown());
    const tick = collect(c);
    expect((await tick()).samples).toEqual([]); // connecting
    await until('the connection', () => srv.conns.length === 1);

    const before = Date.now();
    srv.conns[0]!.write(records[0]!);
    let first: EntitySample | undefined;
    await until('record 1', async () => {
      first = (await tick()).samples[0];
      return first !== undefined;
    });
    expect(first!.entity).toEqual({
      layer: 'guest',
      kind: 'guest-agent',
      id: 'vm-1:guest',
      name: 'web',
      labels: { vm_name: 'web' },
      parent: { layer: 'vm', id: 'vm-1' },
    });
    expect(first!.ts).toBeGreaterThanOrEqual(before);
    expect(first!.ts).toBeLessThanOrEqual(Date.now());
    expect(first!.counters.cpu_system_usec_total).toBe(235 * 10_000);

    // No new record: nothing is re-published.
    expect((await tick()).samples).toEqual([]);

    // Two records between ticks: only the newest goes out.
    srv.conns[0]!.write(records[1]! + records[2]!);
    let latest: EntitySample | undefined;
    await until('record 3', async () => {
      latest = (await tick()).samples[0];
      return latest !== undefined;
    });
    expect(latest!.counters.cpu_system_usec_total).toBe(266 * 10_000);
  });

  it('reconnects after the socket closes and resyncs on a record cut by the disconnect', async () => {
    const srv = await agentServer();
    const c = new GuestCollector(
      parseGuestConfig({ agents: [{ vmId: 'vm-2', socket: srv.socket }], reconnectBackoff: 20 }),
    );
    cleanups.push(() => c.shutdown());
    const tick = collect(c);
    await tick();
    await until('the connection', () => srv.conns.length === 1);
    srv.conns[0]!.end(records[0]!.slice(0, 3000)); // half a record, then the agent side goes away
    await until('a reconnect', async () => {
      await tick();
      return srv.conns.length === 2;
    });
    srv.conns[1]!.write(records[3]!.slice(2000)); // joins mid-record: skipped
    srv.conns[1]!.write(records[3]!);
    let s: EntitySample | undefined;
    await until('record 4', async () => {
      s = (await tick()).samples[0];
      return s !== undefined;
    });
    expect(s!.counters.cpu_system_usec_total).toBe(277 * 10_000);
  });

  it('follows the agent sockets of the VMs the vm collector publishes, and drops gone ones', async () => {
    const srv = await agentServer();
    const directory = new VmDirectory();
    const c = new GuestCollector(parseGuestConfig({}), { directory });
    cleanups.push(() => c.shutdown());
    const tick = collect(c);
    directory.set([{ id: 'uuid-3', name: 'db', qmpSocket: '/x/qmp.sock', agentSocket: srv.socket }]);
    await tick();
    await until('the connection', () => srv.conns.length === 1);
    srv.conns[0]!.write(records[0]!);
    let s: EntitySample | undefined;
    await until('a record', async () => {
      s = (await tick()).samples[0];
      return s !== undefined;
    });
    expect(s!.entity.parent).toEqual({ layer: 'vm', id: 'uuid-3' });
    directory.set([]);
    await tick();
    await until('the connection to close', () => srv.conns[0]!.destroyed || srv.conns[0]!.readableEnded);
  });

  it('reports an unreachable socket with its path, once per cause, and keeps ticking', async () => {
    const c = new GuestCollector(
      parseGuestConfig({ agents: [{ vmId: 'vm-4', socket: '/nonexistent/strata/agent.sock' }] }),
    );
    cleanups.push(() => c.shutdown());
    const tick = collect(c);
    await tick();
    let errors: string[] = [];
    await until('the connect error', async () => {
      errors = (await tick()).errors;
      return errors.length > 0;
    });
    expect(errors).toEqual(['guest:/nonexistent/strata/agent.sock:ENOENT']);
  });

  it('reports a connected guest that stays silent, and stops once records flow', async () => {
    const srv = await agentServer();
    const c = new GuestCollector(
      parseGuestConfig({ agents: [{ vmId: 'vm-5', socket: srv.socket }], silenceWarning: 500 }),
    );
    cleanups.push(() => c.shutdown());
    const tick = collect(c);
    await tick();
    await until('the connection', () => srv.conns.length === 1);
    await tick(); // connected, nothing yet, not silent for long
    await new Promise((r) => setTimeout(r, 600));
    expect((await tick()).errors).toEqual([`guest:${srv.socket}:silent`]);
    srv.conns[0]!.write(records[0]!);
    await until('a record', async () => (await tick()).samples.length === 1);
    expect((await tick()).errors).toEqual([]); // silent again only after 500 ms more
  });

  it('rejects unknown config keys, naming the accepted ones', () => {
    expect(() => parseGuestConfig({ agent: [] })).toThrow(ConfigError);
    expect(() => parseGuestConfig({ agent: [] })).toThrow(
      /collectors\.guest\.agent: unknown key; accepted keys: enabled, fromVmCollector, agents/,
    );
  });
});
