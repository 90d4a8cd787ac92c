// A minimal Docker Engine API client over its unix socket: GET /containers/json for names, images
// and labels. The cgroup scan is the source of truth for *which* containers exist (a container with
// no cgroup has nothing to measure); Docker only names them. So the collector asks Docker when a
// cgroup appears whose id it does not know (that is the "container started" event) and every
// `refreshInterval` for renames. A socket that is absent or answers errors is counted and logged
// once; the cgroup-scan containers still come out, named by their short id.
import http from 'node:http';
import type { Logger } from 'pino';
import { ConnectionError, errorCode } from '../../lib/errors.ts';
import type { OnceLogger } from '../../lib/log.ts';
import { counter } from '../../lib/metrics.ts';
import { cleanName, isCleanName } from '../../lib/terminal.ts';
import type { Target } from './target.ts';

// Whoever may create a container picks its name and labels; they become entity names, InfluxDB
// tags and lines on `strata run`'s terminal. So each is cut to maxNameLength and stripped of
// control characters (escape sequences), and every change is counted.
const sanitized = counter(
  'strata_collector_cgroup_docker_names_sanitized_total',
  'Docker container names, images and label keys/values cut to docker.maxNameLength or stripped of control characters',
);

const dockerErrors = counter(
  'strata_collector_cgroup_docker_errors_total',
  'Docker Engine API requests that failed (absent socket, HTTP errors, timeouts); request = list | events | info',
  ['request'],
);

export interface DockerContainerInfo {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
}

/** "unix:///var/run/docker.sock" or a plain path → the socket path; other schemes are not supported. */
export function dockerSocketPath(hostOrPath: string): string {
  if (hostOrPath.startsWith('unix://')) return hostOrPath.slice('unix://'.length);
  return hostOrPath;
}

export async function listDockerContainers(
  socketPath: string,
  timeoutMs = 2000,
  maxNameLength = 256,
): Promise<DockerContainerInfo[]> {
  const clean = (s: string): string => {
    if (isCleanName(s, maxNameLength)) return s;
    sanitized.inc();
    return cleanName(s, maxNameLength);
  };
  const body = await getJson(socketPath, '/containers/json', timeoutMs);
  if (!Array.isArray(body)) {
    throw new ConnectionError(`docker ${socketPath}: /containers/json did not return a list`, {
      retriable: false,
    });
  }
  const out: DockerContainerInfo[] = [];
  for (const c of body as Array<Record<string, unknown>>) {
    if (typeof c.Id !== 'string') continue;
    const names = Array.isArray(c.Names) ? (c.Names as unknown[]).filter((n) => typeof n === 'string') : [];
    const labels: Record<string, string> = {};
    if (c.Labels && typeof c.Labels === 'object') {
      for (const [k, v] of Object.entries(c.Labels as Record<string, unknown>))
        if (typeof v === 'string') labels[clean(k)] = clean(v);
    }
    out.push({
      id: clean(c.Id),
      name: clean(String(names[0] ?? c.Id.slice(0, 12)).replace(/^\//, '')),
      image: typeof c.Image === 'string' ? clean(c.Image) : '',
      labels,
    });
  }
  return out;
}

/**
 * GET /info → the engine's storage driver (`Driver`: overlay2, devicemapper, btrfs, vfs, zfs, or
 * the containerd snapshotter's name, e.g. `overlayfs`, when the engine uses the containerd image
 * store). undefined when the engine does not say.
 */
export async function dockerStorageDriver(socketPath: string, timeoutMs = 2000): Promise<string | undefined> {
  const body = (await getJson(socketPath, '/info', timeoutMs)) as { Driver?: unknown } | null;
  const d = body?.Driver;
  // Bounded: a driver name is a short word; anything else is not trusted as a tag value.
  return typeof d === 'string' && /^[a-z0-9][a-z0-9._-]{0,31}$/.test(d) ? d : undefined;
}

function getJson(socketPath: string, path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        // Bounded: a container list is a few hundred kB at most.
        if (size > 32 * 1024 * 1024) req.destroy(new Error('docker response larger than 32 MiB'));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          reject(
            new ConnectionError(
              `docker ${socketPath}: GET ${path} answered HTTP ${res.statusCode}: ${text.slice(0, 200).trim()}`,
            ),
          );
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(new ConnectionError(`docker ${socketPath}: GET ${path}: not JSON`, { cause: err }));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(new ConnectionError(`docker ${socketPath}: GET ${path} timed out after ${timeoutMs} ms`)),
    );
    req.on('error', (err) =>
      reject(
        err instanceof ConnectionError
          ? err
          : new ConnectionError(`docker ${socketPath}: ${err.message}`, { cause: err }),
      ),
    );
    req.end();
  });
}

/**
 * Follows GET /events (container start/die/rename) and calls `onEvent` for each; reconnects with
 * backoff (1 s doubling to 30 s) after errors, calling `onError` each time. Returns a stopper.
 * The events are hints ("re-scan now"), so a missed one costs only a discoveryInterval of delay.
 */
export function watchDockerEvents(
  socketPath: string,
  onEvent: (e: { action: string; id: string }) => void,
  onError: (err: unknown) => void,
): () => void {
  let stopped = false;
  let req: http.ClientRequest | undefined;
  let timer: NodeJS.Timeout | undefined;
  let backoff = 1000;
  const filters = encodeURIComponent(
    JSON.stringify({ type: ['container'], event: ['start', 'die', 'rename'] }),
  );
  const connect = () => {
    if (stopped) return;
    let failed = false;
    const retry = (err: unknown) => {
      if (stopped || failed) return;
      failed = true;
      onError(err);
      timer = setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30_000);
    };
    req = http.request({ socketPath, path: `/events?filters=${filters}`, method: 'GET' }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        retry(new ConnectionError(`docker ${socketPath}: GET /events answered HTTP ${res.statusCode}`));
        return;
      }
      backoff = 1000;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        // One JSON object per line; bounded: a line over 1 MiB is dropped.
        if (buf.length > 1024 * 1024 && !buf.includes('\n')) buf = '';
        for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const e = JSON.parse(line) as {
              Action?: string;
              status?: string;
              id?: string;
              Actor?: { ID?: string };
            };
            onEvent({ action: e.Action ?? e.status ?? '', id: e.Actor?.ID ?? e.id ?? '' });
          } catch {
            // not JSON: ignore the line, the stream goes on
          }
        }
      });
      res.on('end', () => retry(new ConnectionError(`docker ${socketPath}: /events stream ended`)));
      res.on('error', retry);
    });
    req.on('error', retry);
    req.end();
  };
  connect();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    req?.destroy();
  };
}

export interface DockerNamesOptions {
  socket: string;
  timeout: number;
  maxNameLength: number;
  log: Logger;
  once: OnceLogger;
}

/**
 * The collector's view of Docker: the last container list (names, images, Kubernetes labels by
 * container id), refreshed on demand, and the event stream that asks for a re-scan. Never fails
 * the collector: errors are counted, logged once per socket and cause, and the containers keep
 * their short-id names.
 */
export class DockerNames {
  private byId = new Map<string, DockerContainerInfo>();
  /** When the last list request started (Date.now ms). */
  lastList = -Infinity;
  private inFlight: Promise<void> | undefined;
  private failing = false;
  /** The engine's storage driver (GET /info), asked once per engine until it answers. */
  private storageDriver: string | undefined;
  private stopEvents: (() => void) | undefined;

  constructor(private readonly o: DockerNamesOptions) {}

  get socket(): string {
    return this.o.socket;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Watches start/die/rename events; `changed` runs on each. Errors are counted and logged once, like the list's. */
  watch(changed: () => void): void {
    if (this.stopEvents) return;
    this.stopEvents = watchDockerEvents(
      this.o.socket,
      () => {
        this.lastList = -Infinity;
        changed();
      },
      (err) => this.error(err, 'events'),
    );
  }

  /** Re-lists the containers (one request at a time), then names `targets`. */
  refresh(targets: Iterable<Target>): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.lastList = Date.now();
    this.inFlight = (async () => {
      try {
        const list = await listDockerContainers(this.o.socket, this.o.timeout, this.o.maxNameLength);
        // Once: the driver only changes with a restart of the engine, which restarts its containers.
        // A failure costs only the label (asked again at the next refresh), never the names.
        if (this.storageDriver === undefined) {
          this.storageDriver = await dockerStorageDriver(this.o.socket, this.o.timeout).catch(() => {
            dockerErrors.inc({ request: 'info' });
            return undefined;
          });
        }
        this.byId = new Map(list.map((c) => [c.id, c]));
        if (this.failing) this.o.log.info({ socket: this.o.socket }, 'docker API answers again');
        this.failing = false;
        this.apply(targets);
      } catch (err) {
        this.error(err, 'list');
      } finally {
        this.inFlight = undefined;
      }
    })();
    return this.inFlight;
  }

  /** Names the targets Docker knows, and labels them with the Kubernetes pod labels it carries. */
  apply(targets: Iterable<Target>): void {
    for (const t of targets) {
      const info = this.byId.get(t.c.id);
      if (!info) continue;
      t.name = info.name;
      if (info.image) t.labels.image = info.image;
      // Whether containers of one image can share its files' page cache (docs/overhead.md §2.4).
      if (this.storageDriver) t.labels.storage_driver = this.storageDriver;
      t.labels.container_name = info.name;
      // Kubernetes on the docker runtime (dockershim / cri-dockerd) labels its containers.
      const l = info.labels;
      if (l['io.kubernetes.pod.name']) t.labels.pod = l['io.kubernetes.pod.name'];
      if (l['io.kubernetes.pod.namespace']) t.labels.namespace = l['io.kubernetes.pod.namespace'];
      if (l['io.kubernetes.container.name']) t.labels.container_name = l['io.kubernetes.container.name'];
    }
  }

  private error(err: unknown, request: 'list' | 'events'): void {
    dockerErrors.inc({ request });
    this.failing = true;
    const code = errorCode(err) ?? errorCode((err as Error | undefined)?.cause) ?? 'error';
    // One key per socket and cause (not per request): an absent socket is one log line, not two.
    this.o.once.warn(
      `docker:${this.o.socket}:${code}`,
      { socket: this.o.socket, request, err: (err as Error).message },
      code === 'ENOENT'
        ? 'no Docker socket here; containers are still found by the cgroup scan, named by short id ' +
            '(set collectors.cgroup.docker.socket or DOCKER_HOST, or docker.enabled: false)'
        : 'Docker API request failed; containers are still found by the cgroup scan, named by short id',
    );
  }

  /** Stops the event stream and waits for a list request still running. */
  async close(): Promise<void> {
    this.stopEvents?.();
    this.stopEvents = undefined;
    if (this.inFlight) await this.inFlight.catch(() => undefined);
  }
}
