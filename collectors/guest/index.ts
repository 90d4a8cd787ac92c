// The guest collector: each VM's guest seen from inside (layer `guest`, kind `guest-agent`, id
// `<vm id>:guest`, parent the `vm` entity). The in-guest agent (strata-guest-agent.sh) writes one
// framed record of raw /proc files per interval to a virtio-serial port; QEMU exposes the port as a
// unix socket on the host. This collector keeps one client connection per VM, decodes frames as
// they arrive (framing.ts) into a one-slot "latest record" per VM (bounded by construction), and
// each tick parses that record with the host layer's parsers, so guest and host names match.
// A record is published once: a tick with no new record since the last one publishes nothing for
// that guest and counts a stale tick (the guest agent stopped, the guest hung, or it is slow).
// The sample's timestamp is the host's receive time of the record. The cgroups the agent reports
// (cgroup v2 guests) become `container` entities parented to the guest (containers.ts).
// The guest may be hostile: every bound below is a config key (config.ts, docs/vm.md "Bounds
// against a hostile guest"), every cut is counted on /metrics and logged once.
import net from 'node:net';
import { ConnectionError, InvalidDataError } from '../../lib/errors.ts';
import { componentLogger, OnceLogger } from '../../lib/log.ts';
import { counter, gauge } from '../../lib/metrics.ts';
import { printable } from '../../lib/terminal.ts';
import type { EntitySample } from '../../schemas/sample.ts';
import { type ProcFiles, procSampleFromFiles } from '../procfs/parsers.ts';
import type { Accumulator, Collector } from '../types.ts';
import { sharedVmDirectory, type VmDirectory } from '../vm/directory.ts';
import { type GuestCollectorConfig, parseGuestConfig } from './config.ts';
import { guestContainerSamples } from './containers.ts';
import { type FrameDecoderStats, GuestFrameDecoder, type GuestRecord } from './framing.ts';
import { GuestInstanceNames } from './instances.ts';

export { GuestCollectorConfig, parseGuestConfig } from './config.ts';

const m = {
  guests: gauge('strata_guest_followed_guests', 'guest agent sockets the guest collector follows'),
  records: counter('strata_guest_records_received_total', 'complete records received from in-guest agents'),
  dropped: counter(
    'strata_guest_records_dropped_total',
    'guest records dropped: truncated, oversized, malformed, header_too_long, rate (over maxRecordsPerSecond)',
    ['reason'],
  ),
  readPauses: counter(
    'strata_guest_read_pauses_total',
    'times a guest socket was not read for the rest of a second: over maxBytesPerSecond',
  ),
  instancesDropped: counter(
    'strata_guest_instances_dropped_total',
    'guest devices, interfaces and containers not published, by reason (bad_name, max_instances, new_per_tick, names_cap)',
    ['kind', 'reason'],
  ),
  problemsSuppressed: counter(
    'strata_guest_problems_suppressed_total',
    'malformed parts of guest records counted but not reported: over maxProblemsPerRecord',
  ),
  skipped: counter('strata_guest_skipped_bytes_total', 'bytes outside any record, discarded while resyncing'),
  stale: counter('strata_guest_stale_ticks_total', 'ticks with no new record from a followed guest'),
  connects: counter('strata_guest_connects_total', 'connections made to guest agent sockets'),
  overflow: counter('strata_guest_ignored_guests_total', 'guests ignored because maxGuests was reached'),
  containers: gauge('strata_guest_containers', 'containers inside guests published by the last tick'),
  containersDropped: counter(
    'strata_guest_containers_dropped_total',
    'guest cgroups not published: over the in-guest agent bound (STRATA_CGROUP_MAX) or maxContainers',
  ),
};

/** A malformed part of a record: `where` is empty for the guest's /proc files, else "<cgroup path>:". */
interface Problem {
  where: string;
  problem: string;
}

export interface GuestTarget {
  vmId: string;
  name: string;
  socket: string;
}

export interface GuestCollectorOptions {
  /** Where the vm collector publishes the VMs it found; default the shared one. */
  directory?: VmDirectory;
}

interface GuestState {
  target: GuestTarget;
  decoder: GuestFrameDecoder;
  names: GuestInstanceNames;
  /** Bytes read in the current one-second window (maxBytesPerSecond). */
  windowStart: number;
  windowBytes: number;
  resumeTimer?: NodeJS.Timeout;
  lastStats: FrameDecoderStats;
  sock?: net.Socket;
  connected: boolean;
  latest?: { record: GuestRecord; receivedAt: number };
  emittedAt: number;
  connectedAt: number;
  backoffMs: number;
  nextAttemptAt: number;
  lastError?: Error;
  closed: boolean;
}

export class GuestCollector implements Collector {
  readonly name = 'guest';
  private readonly log = componentLogger('collector.guest');
  private readonly directory: VmDirectory;
  private readonly guests = new Map<string, GuestState>();
  private readonly warnedDropped = new Set<string>();
  private readonly once = new OnceLogger(this.log);

  constructor(
    readonly config: GuestCollectorConfig,
    opts: GuestCollectorOptions = {},
  ) {
    this.directory = opts.directory ?? sharedVmDirectory;
  }

  async start(): Promise<void> {
    this.reconcile();
    if (this.guests.size === 0 || this.config.firstRecordWait <= 0) return;
    for (const g of this.guests.values()) this.connect(g);
    const deadline = Date.now() + this.config.firstRecordWait;
    while (Date.now() < deadline && [...this.guests.values()].some((g) => !g.latest && !g.lastError)) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private targets(): GuestTarget[] {
    const out: GuestTarget[] = this.config.agents.map((a) => ({
      vmId: a.vmId,
      name: a.name ?? a.vmId,
      socket: a.socket,
    }));
    if (this.config.fromVmCollector) {
      for (const vm of this.directory.list()) {
        if (vm.agentSocket) out.push({ vmId: vm.id, name: vm.name, socket: vm.agentSocket });
      }
    }
    return out;
  }

  /** Opens connections to new agent sockets, closes those of VMs that went away. */
  private reconcile(): void {
    const wanted = new Map<string, GuestTarget>();
    let ignored = 0;
    for (const t of this.targets()) {
      if (wanted.size >= this.config.maxGuests) ignored++;
      else wanted.set(t.socket, t);
    }
    if (ignored) m.overflow.inc(ignored);
    for (const [sock, g] of this.guests) {
      const t = wanted.get(sock);
      if (!t || t.vmId !== g.target.vmId) {
        this.closeGuest(g);
        this.guests.delete(sock);
      }
    }
    for (const [sock, t] of wanted) {
      if (this.guests.has(sock)) continue;
      const decoder = this.decoder();
      this.guests.set(sock, {
        target: t,
        decoder,
        names: new GuestInstanceNames({
          maxInstances: this.config.maxInstances,
          maxNewPerTick: this.config.maxNewInstancesPerTick,
          maxNames: this.config.maxInstanceNames,
          ttlMs: this.config.instanceNameTtl,
          maxNameLength: this.config.maxNameLength,
        }),
        windowStart: 0,
        windowBytes: 0,
        lastStats: { ...decoder.stats },
        connected: false,
        emittedAt: 0,
        connectedAt: 0,
        backoffMs: 0,
        nextAttemptAt: 0,
        closed: false,
      });
    }
    m.guests.set(this.guests.size);
  }

  private decoder(): GuestFrameDecoder {
    return new GuestFrameDecoder({
      maxRecordBytes: this.config.maxRecordBytes,
      maxHeaderBytes: this.config.maxHeaderBytes,
      maxRecordsPerSecond: this.config.maxRecordsPerSecond,
    });
  }

  private connect(g: GuestState): void {
    if (g.sock || g.closed || Date.now() < g.nextAttemptAt) return;
    const sock = net.createConnection(g.target.socket);
    g.sock = sock;
    // A new connection starts mid-stream at worst: the decoder resyncs on the next header.
    g.decoder = this.decoder();
    g.lastStats = { ...g.decoder.stats };
    sock.on('connect', () => {
      g.connected = true;
      g.connectedAt = Date.now();
      g.backoffMs = 0;
      g.lastError = undefined;
      m.connects.inc();
      this.log.info({ vm: g.target.vmId, socket: g.target.socket }, 'connected to the in-guest agent port');
    });
    sock.on('data', (chunk: Buffer) => this.onData(g, chunk));
    sock.on('error', (err) => {
      g.lastError = err;
    });
    sock.on('close', () => {
      if (g.sock !== sock) return;
      g.sock = undefined;
      g.connected = false;
      g.backoffMs = Math.min(30_000, g.backoffMs ? g.backoffMs * 2 : this.config.reconnectBackoff);
      g.nextAttemptAt = Date.now() + g.backoffMs;
    });
  }

  private onData(g: GuestState, chunk: Buffer): void {
    const now = Date.now();
    if (now - g.windowStart >= 1000) {
      g.windowStart = now;
      g.windowBytes = 0;
    }
    g.windowBytes += chunk.length;
    const sock = g.sock;
    if (g.windowBytes >= this.config.maxBytesPerSecond && sock && !g.resumeTimer) {
      // Stop reading until the second is over: the guest's writes block on its side.
      m.readPauses.inc();
      this.once.warn(
        `guest:${g.target.vmId}:bytes-per-second`,
        { vm: g.target.vmId, maxBytesPerSecond: this.config.maxBytesPerSecond },
        'guest sends more than collectors.guest.maxBytesPerSecond; reading pauses for the rest of each second',
      );
      sock.pause();
      g.resumeTimer = setTimeout(
        () => {
          g.resumeTimer = undefined;
          if (g.sock === sock) sock.resume();
        },
        Math.max(1, g.windowStart + 1000 - now),
      );
    }
    const records = g.decoder.push(chunk);
    const receivedAt = Date.now();
    const last = records[records.length - 1];
    if (last) g.latest = { record: last, receivedAt };
    const s = g.decoder.stats;
    const p = g.lastStats;
    if (s.records > p.records) m.records.inc(s.records - p.records);
    if (s.truncated > p.truncated) m.dropped.inc({ reason: 'truncated' }, s.truncated - p.truncated);
    if (s.oversized > p.oversized) m.dropped.inc({ reason: 'oversized' }, s.oversized - p.oversized);
    if (s.malformed > p.malformed) m.dropped.inc({ reason: 'malformed' }, s.malformed - p.malformed);
    if (s.headerTooLong > p.headerTooLong)
      m.dropped.inc({ reason: 'header_too_long' }, s.headerTooLong - p.headerTooLong);
    if (s.rateLimited > p.rateLimited) {
      m.dropped.inc({ reason: 'rate' }, s.rateLimited - p.rateLimited);
      this.once.warn(
        `guest:${g.target.vmId}:records-per-second`,
        { vm: g.target.vmId, maxRecordsPerSecond: this.config.maxRecordsPerSecond },
        'guest sends more records than collectors.guest.maxRecordsPerSecond; the rest are dropped undecoded',
      );
    }
    if (s.skippedBytes > p.skippedBytes) m.skipped.inc(s.skippedBytes - p.skippedBytes);
    g.lastStats = { ...s };
  }

  async gather(acc: Accumulator): Promise<void> {
    this.reconcile();
    let containers = 0;
    for (const g of this.guests.values()) {
      this.connect(g);
      if (!g.connected && g.lastError) {
        acc.error(
          'guest',
          `guest:${g.target.socket}:${(g.lastError as { code?: string }).code ?? 'conn'}`,
          new ConnectionError(
            `in-guest agent socket ${g.target.socket} of VM ${g.target.vmId}: ${g.lastError.message}; ` +
              'QEMU serves one client per chardev socket, so check that nothing else is connected',
            { cause: g.lastError },
          ),
        );
      }
      const latest = g.latest;
      if (!latest || latest.receivedAt <= g.emittedAt) {
        if (!g.connected) continue;
        m.stale.inc();
        const since = Math.max(latest?.receivedAt ?? 0, g.connectedAt);
        const silentMs = Date.now() - since;
        if (silentMs >= this.config.silenceWarning) {
          acc.error(
            'guest',
            `guest:${g.target.socket}:silent`,
            new ConnectionError(
              `no record from the in-guest agent of VM ${g.target.vmId} on ${g.target.socket} for ` +
                `${Math.round(silentMs / 1000)} s: is strata-guest-agent.sh running in the guest (port ` +
                'strata.agent), and is no other program connected to this socket (QEMU serves one client)?',
            ),
          );
        }
        continue;
      }
      g.emittedAt = latest.receivedAt;
      g.names.beginTick(latest.receivedAt);
      const problems: Problem[] = [];
      const sample = this.sample(undefined, g.target, latest.record, latest.receivedAt, problems);
      sample.devices = g.names.cap('device', sample.entity.id, sample.devices);
      sample.interfaces = g.names.cap('interface', sample.entity.id, sample.interfaces);
      acc.add(sample);
      if (this.config.containers)
        containers += this.addContainers(acc, g, latest.record, latest.receivedAt, problems);
      this.reportProblems(acc, g.target, problems);
      for (const [k, n] of g.names.takeDrops()) {
        const [kind, reason] = k.split('\u0000') as [string, string];
        m.instancesDropped.inc({ kind, reason }, n);
        this.once.warn(
          `guest:${g.target.vmId}:instances:${kind}:${reason}`,
          { vm: g.target.vmId, kind, reason, dropped: n },
          `guest ${kind}s not published (${reason}); see collectors.guest.maxInstances, maxNewInstancesPerTick, maxInstanceNames, maxNameLength`,
        );
      }
    }
    m.containers.set(containers);
  }

  /**
   * The first maxProblemsPerRecord problems of a record go to acc.error, keyed by guest and
   * file (not line), so a guest varying its bad lines cannot make new log keys; the rest are counted.
   */
  private reportProblems(acc: Accumulator, t: GuestTarget, problems: readonly Problem[]): void {
    const max = this.config.maxProblemsPerRecord;
    for (let i = 0; i < problems.length && i < max; i++) {
      const { where, problem } = problems[i]!;
      const text = printable(problem.length > 200 ? `${problem.slice(0, 200)}…` : problem);
      const file = text.slice(
        0,
        Math.min(64, ...[text.indexOf(' line '), text.indexOf(':')].filter((x) => x >= 0)),
      );
      acc.error(
        'guest',
        `guest:${t.vmId}:${where}${file}`,
        new InvalidDataError(`guest ${t.vmId}${where ? ` cgroup ${where}` : ''}: ${text}`),
      );
    }
    if (problems.length > max) m.problemsSuppressed.inc(problems.length - max);
  }

  /** The guest's own containers (nested `guest` → `container`); returns how many were published. */
  private addContainers(
    acc: Accumulator,
    g: GuestState,
    record: GuestRecord,
    receivedAt: number,
    problems: Problem[],
  ): number {
    const t = g.target;
    const parts = guestContainerSamples(record, t, receivedAt, this.config.maxContainers, (path) =>
      g.names.cleanName('container', path),
    );
    for (const { path, problem } of parts.problems) problems.push({ where: `${path || '(list)'}:`, problem });
    if (parts.dropped > 0) {
      m.containersDropped.inc(parts.dropped);
      if (!this.warnedDropped.has(t.vmId)) {
        this.warnedDropped.add(t.vmId);
        this.log.warn(
          { vm: t.vmId, dropped: parts.dropped, maxContainers: this.config.maxContainers },
          'more cgroups in the guest than the in-guest agent (STRATA_CGROUP_MAX) or collectors.guest.maxContainers allow; the rest are not published',
        );
      }
    }
    let published = 0;
    for (const s of parts.samples) {
      if (!g.names.admit('container', s.entity.id)) continue;
      s.devices = g.names.cap('device', s.entity.id, s.devices);
      acc.add(s);
      published++;
    }
    return published;
  }

  /** One `guest` sample from one record (exported through the class for tests and tools). */
  sample(
    acc: Accumulator | undefined,
    t: GuestTarget,
    record: GuestRecord,
    receivedAt: number,
    problems?: Problem[],
  ): EntitySample {
    const parts = procSampleFromFiles(procFilesOf(record));
    if (problems) for (const problem of parts.problems) problems.push({ where: '', problem });
    else if (acc)
      this.reportProblems(
        acc,
        t,
        parts.problems.map((problem) => ({ where: '', problem })),
      );
    return {
      entity: {
        layer: 'guest',
        kind: 'guest-agent',
        id: `${t.vmId}:guest`,
        name: t.name,
        labels: { vm_name: t.name },
        parent: { layer: 'vm', id: t.vmId },
      },
      ts: receivedAt,
      counters: parts.counters,
      gauges: parts.gauges,
      devices: parts.devices,
      interfaces: parts.interfaces,
    };
  }

  private closeGuest(g: GuestState): void {
    g.closed = true;
    if (g.resumeTimer) clearTimeout(g.resumeTimer);
    g.resumeTimer = undefined;
    g.sock?.destroy();
    g.sock = undefined;
    g.connected = false;
  }

  async shutdown(): Promise<void> {
    for (const g of this.guests.values()) this.closeGuest(g);
    this.guests.clear();
    m.guests.set(0);
  }
}

/** The framing's file names (paths under /proc) → the host parsers' input. */
export function procFilesOf(record: GuestRecord): ProcFiles {
  const f = record.files;
  const files: ProcFiles = {
    stat: f.stat,
    vmstat: f.vmstat,
    meminfo: f.meminfo,
    diskstats: f.diskstats,
    netdev: f['net/dev'],
  };
  // An empty pressure section means the kernel refused the read (PSI off): treat as absent.
  const pick = (k: string) => (f[k] ? f[k] : undefined);
  if (f['pressure/cpu'] || f['pressure/io'] || f['pressure/memory']) {
    files.pressure = { cpu: pick('pressure/cpu'), io: pick('pressure/io'), memory: pick('pressure/memory') };
  }
  return files;
}

export function createGuestCollector(input: unknown, opts: GuestCollectorOptions = {}): GuestCollector {
  return new GuestCollector(parseGuestConfig(input), opts);
}
