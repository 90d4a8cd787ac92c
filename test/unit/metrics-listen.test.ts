// Listen addresses of /metrics and /healthz: ":port" binds 127.0.0.1 only, every interface only
// when asked for ("0.0.0.0:port", "[::]:port"). The bound address is read back from the kernel
// (/proc/net/tcp, /proc/net/tcp6), not from our own parse.
import fs from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.ts';
import { parseListen, serveMetrics } from '../../lib/metrics.ts';

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Local addresses (kernel hex) of the sockets listening on `port`. */
function listeningOn(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // 0A = LISTEN
      const [addr, p] = f[1]!.split(':') as [string, string];
      if (p === hexPort) out.push(addr);
    }
  }
  return out;
}

describe('parseListen', () => {
  it.each([
    [':9464', { host: '127.0.0.1', port: 9464, allInterfaces: false, loopbackDefault: true }],
    ['0.0.0.0:9465', { host: '0.0.0.0', port: 9465, allInterfaces: true, loopbackDefault: false }],
    ['[::]:9465', { host: '::', port: 9465, allInterfaces: true, loopbackDefault: false }],
    ['[::1]:1', { host: '::1', port: 1, allInterfaces: false, loopbackDefault: false }],
    ['10.0.0.5:9464', { host: '10.0.0.5', port: 9464, allInterfaces: false, loopbackDefault: false }],
    ['metrics.local:80', { host: 'metrics.local', port: 80, allInterfaces: false, loopbackDefault: false }],
  ])('%s', (listen, want) => {
    expect(parseListen(listen)).toEqual(want);
  });

  it.each(['9464', 'host:', 'a:b:9464', ':70000', '::9464', 'host:94x'])(
    'refuses %s, naming the forms',
    (bad) => {
      expect(() => parseListen(bad)).toThrow(ConfigError);
      expect(() => parseListen(bad)).toThrow(/":9464" is 127.0.0.1 only; "0.0.0.0:9464" or "\[::\]:9464"/);
    },
  );
});

describe('serveMetrics binds what the address says', () => {
  it('":port" listens on 127.0.0.1 only', async () => {
    const port = await freePort();
    const close = await serveMetrics(`:${port}`);
    try {
      expect(listeningOn(port)).toEqual(['0100007F']); // 127.0.0.1, nothing else
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      await close();
    }
  });

  it('"0.0.0.0:port" listens on every IPv4 interface', async () => {
    const port = await freePort();
    const close = await serveMetrics(`0.0.0.0:${port}`);
    try {
      expect(listeningOn(port)).toEqual(['00000000']);
    } finally {
      await close();
    }
  });
});
