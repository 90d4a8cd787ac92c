// The Alertmanager webhook sink against a real Alertmanager (Debian's prometheus-alertmanager,
// stack/install-apt.sh), started here on a free loopback port: an incident that lasts longer than
// the endsAt of its first post stays active because the sink repeats it, and its resolved event
// ends it. (Alertmanager resolves an alert it has not heard of by its endsAt, or for
// resolve_timeout without one: a client must repeat active alerts.)
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertEvent } from '../../schemas/alert.ts';
import { WebhookConfig, WebhookSink } from '../../sinks/webhook/index.ts';

const BINARY = '/usr/bin/prometheus-alertmanager';
let am: ChildProcess | undefined;
let dir = '';
let url = '';
let log = '';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  await fs.access(BINARY).catch(() => {
    throw new Error(
      `${BINARY} not found: install it with bash stack/install-apt.sh (Debian's prometheus-alertmanager)`,
    );
  });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-am-'));
  await fs.writeFile(
    path.join(dir, 'alertmanager.yml'),
    'route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n',
  );
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  am = spawn(
    BINARY,
    [
      `--config.file=${path.join(dir, 'alertmanager.yml')}`,
      `--storage.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=', // no gossip: a single instance
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  am.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`Alertmanager not ready on ${url} in 20 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 30_000);

afterAll(async () => {
  am?.kill('SIGTERM');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A firing NoisyNeighborIO event on `device`, starting now. */
function firingOn(device: string): AlertEvent {
  const now = Date.now();
  return AlertEvent.parse({
    v: 1,
    id: `NoisyNeighborIO:am-node:${device}:container:fio:${now}`,
    name: 'NoisyNeighborIO',
    status: 'firing',
    node: 'am-node',
    labels: { device, antagonist: 'fio', antagonist_layer: 'container', victims: 'db' },
    evidence: { antagonist_iops_share_ratio: 0.95 },
    summary: `fio dominates ${device}; db stalls`,
    starts_at: now,
    ts: now,
  });
}

/** The alerts Alertmanager holds as not resolved, by our alert id. */
async function activeIds(): Promise<string[]> {
  const res = await fetch(`${url}/api/v2/alerts`);
  const alerts = (await res.json()) as { annotations: { alert_id?: string } }[];
  return alerts.map((a) => a.annotations.alert_id ?? '');
}

describe('webhook sink → real Alertmanager', () => {
  it('keeps an incident active past its first endsAt by repeating it, and ends it on resolved', async () => {
    const firing = firingOn('vda');
    // endsAt = post time + 4 s; the incident lasts 7 s.
    const sink = new WebhookSink(WebhookConfig.parse({ url, resendInterval: '1s' }));
    sink.enqueue([firing], 0);
    await new Promise((r) => setTimeout(r, 7_000));
    expect(await activeIds()).toContain(firing.id);
    sink.enqueue([{ ...firing, status: 'resolved', ends_at: Date.now(), ts: Date.now() }], 0);
    await sink.close();
    await new Promise((r) => setTimeout(r, 500));
    expect(await activeIds()).not.toContain(firing.id);
  }, 20_000);

  it('without repeats (a processor gone), Alertmanager ends the incident by itself after its endsAt', async () => {
    const firing = firingOn('vdb');
    const sink = new WebhookSink(WebhookConfig.parse({ url, resendInterval: '1s' }));
    sink.enqueue([firing], 7);
    await new Promise((r) => setTimeout(r, 500));
    expect(await activeIds()).toContain(firing.id);
    await sink.close(); // stops the repeats, as a processor that exits
    await new Promise((r) => setTimeout(r, 5_500));
    expect(await activeIds()).not.toContain(firing.id);
  }, 20_000);
});
