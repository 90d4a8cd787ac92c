// A small QMP (QEMU Machine Protocol) client: one persistent unix-socket connection per VM.
// Protocol: the server sends a greeting {"QMP":{...}}, the client sends {"execute":"qmp_capabilities"}
// to leave negotiation mode, then JSON objects separated by newlines: requests carry an "id" that
// the reply echoes ({"return":...,"id"} or {"error":{"class","desc"},"id"}); asynchronous events
// ({"event":...}) can arrive at any time and are counted and ignored here.
// A QEMU chardev server serves one client at a time: a second client connects but never gets a
// greeting, which is why the greeting has its own timeout and the message says who may hold it.
import net from 'node:net';
import { ConnectionError, errorMessage, StrataError } from '../../lib/errors.ts';

export interface QmpGreeting {
  version?: { qemu?: { major: number; minor: number; micro: number }; package?: string };
  capabilities?: string[];
}

/** QEMU answered a command with an error (GenericError, CommandNotFound, DeviceNotFound...). */
export class QmpCommandError extends StrataError {
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    desc: string,
    socketPath: string,
  ) {
    super(`QMP ${command} on ${socketPath}: ${qmpClass}: ${desc}`, { retriable: false });
  }
}

export interface QmpClientOptions {
  socketPath: string;
  /** Per-command timeout; a timed-out connection is dropped (replies could arrive out of step). */
  commandTimeoutMs?: number;
  /** Time allowed for connect + greeting + qmp_capabilities. */
  connectTimeoutMs?: number;
  /** First reconnect delay after a failure; doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A reply line longer than this drops the connection (bounded buffer). */
  maxLineBytes?: number;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class QmpClient {
  readonly socketPath: string;
  private readonly commandTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxLineBytes: number;
  private sock: net.Socket | undefined;
  private connecting: Promise<void> | undefined;
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private backoffMs = 0;
  private nextAttemptAt = 0;
  private closed = false;
  greeting: QmpGreeting | undefined;
  /** Why the last connection attempt failed (cleared by a successful one). */
  lastError: Error | undefined;
  /** Asynchronous events received and ignored (SHUTDOWN, BALLOON_CHANGE, ...). */
  eventsIgnored = 0;
  /** Successful connections so far (1 = never reconnected). */
  connects = 0;

  constructor(opts: QmpClientOptions) {
    this.socketPath = opts.socketPath;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 2000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
    this.minBackoffMs = opts.minBackoffMs ?? 1000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.maxLineBytes = opts.maxLineBytes ?? 4 * 1024 * 1024;
  }

  get connected(): boolean {
    return this.sock !== undefined && !this.sock.destroyed && this.connecting === undefined;
  }

  /**
   * Starts connecting unless connected, connecting, closed or inside the reconnect backoff; does not
   * wait. Collectors call this from their tick so that a dead or busy socket (a connect that times
   * out) never holds up the tick; the outcome shows in `connected` / `lastError` later.
   */
  connectInBackground(): void {
    if (this.closed || this.connected || this.connecting !== undefined || Date.now() < this.nextAttemptAt)
      return;
    this.connect().catch(() => {});
  }

  /** Connects now if not connected (no backoff check). */
  async connect(): Promise<void> {
    if (this.closed)
      throw new ConnectionError(`QMP client for ${this.socketPath} is closed`, { retriable: false });
    if (this.connected) return;
    this.connecting ??= this.doConnect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    const sock = net.createConnection(this.socketPath);
    sock.setEncoding('utf8');
    this.sock = sock;
    this.buf = '';
    let greeted: ((g: QmpGreeting) => void) | undefined;
    const greeting = new Promise<QmpGreeting>((resolve) => {
      greeted = resolve;
    });
    const onGreeting = (msg: Record<string, unknown>) => {
      if ('QMP' in msg) greeted?.(msg.QMP as QmpGreeting);
    };
    sock.on('data', (chunk: string) => this.onData(sock, chunk, onGreeting));
    const failed = new Promise<never>((_, reject) => {
      sock.once('error', (err) => reject(err));
      sock.once('close', () => reject(new Error('connection closed')));
    });
    failed.catch(() => {});
    sock.on('close', () =>
      this.onClose(sock, new ConnectionError(`QMP ${this.socketPath}: connection closed`)),
    );
    sock.on('error', () => {});
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `no QMP greeting within ${this.connectTimeoutMs} ms (QEMU serves one QMP client per socket: ` +
                'is another client, e.g. libvirtd or a second strata agent, connected?)',
            ),
          ),
        this.connectTimeoutMs,
      );
    });
    try {
      await Promise.race([once(sock, 'connect'), failed, timeout]);
      this.greeting = await Promise.race([greeting, failed, timeout]);
      await Promise.race([this.send('qmp_capabilities', undefined, sock), failed, timeout]);
      this.connects++;
      this.backoffMs = 0;
      this.lastError = undefined;
    } catch (err) {
      sock.destroy();
      this.sock = undefined;
      this.backoffMs = Math.min(this.maxBackoffMs, this.backoffMs ? this.backoffMs * 2 : this.minBackoffMs);
      this.nextAttemptAt = Date.now() + this.backoffMs;
      this.lastError = new ConnectionError(
        `QMP ${this.socketPath}: ${errorMessage(err)}; check that QEMU runs with -qmp unix:${this.socketPath},server=on,wait=off`,
        { cause: err },
      );
      throw this.lastError;
    } finally {
      clearTimeout(timer);
    }
  }

  private onData(sock: net.Socket, chunk: string, onGreeting: (m: Record<string, unknown>) => void): void {
    if (sock !== this.sock) return;
    this.buf += chunk;
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onLine(line, onGreeting);
      nl = this.buf.indexOf('\n');
    }
    if (this.buf.length > this.maxLineBytes) {
      sock.destroy(new Error(`QMP line longer than ${this.maxLineBytes} bytes`));
    }
  }

  private onLine(line: string, onGreeting: (m: Record<string, unknown>) => void): void {
    const msg = parseQmpLine(line);
    if (msg === undefined) return;
    if (msg.kind === 'greeting') {
      onGreeting(msg.raw);
      return;
    }
    if (msg.kind === 'event') {
      this.eventsIgnored++;
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.kind === 'error') {
      p.reject(new QmpCommandError(p.command, msg.qmpClass, msg.desc, this.socketPath));
    } else {
      p.resolve(msg.value);
    }
  }

  private onClose(sock: net.Socket, err: Error): void {
    if (sock === this.sock) this.sock = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }

  private send(
    command: string,
    args: Record<string, unknown> | undefined,
    sock: net.Socket,
  ): Promise<unknown> {
    const id = `s${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new ConnectionError(
            `QMP ${command} on ${this.socketPath}: no reply within ${this.commandTimeoutMs} ms`,
          ),
        );
        // A late reply would be matched by id, but a QEMU that does not answer is usually stuck:
        // start over with a fresh connection.
        sock.destroy();
      }, this.commandTimeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      sock.write(
        `${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`,
      );
    });
  }

  /**
   * Runs one command, connecting first when needed. While a reconnect backoff is running it fails
   * fast with a retriable ConnectionError instead of hammering a dead socket every tick.
   */
  async execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (!this.connected) {
      if (this.connecting === undefined && Date.now() < this.nextAttemptAt) {
        throw new ConnectionError(
          `QMP ${this.socketPath}: not connected; next reconnect in ${this.nextAttemptAt - Date.now()} ms`,
        );
      }
      await this.connect();
    }
    const sock = this.sock;
    if (!sock) throw new ConnectionError(`QMP ${this.socketPath}: connection lost`);
    return (await this.send(command, args, sock)) as T;
  }

  close(): void {
    this.closed = true;
    this.sock?.destroy();
    this.sock = undefined;
  }
}

export type QmpLine =
  | { kind: 'greeting'; raw: Record<string, unknown> }
  | { kind: 'event' }
  | { kind: 'return'; id: string; value: unknown }
  | { kind: 'error'; id: string; qmpClass: string; desc: string };

/**
 * One line from the QMP socket, classified; undefined for what QMP never sends (not JSON, not an
 * object, a reply without a string id). Never throws: a line is untrusted input, and an exception
 * here would escape the socket's data handler and end the process.
 */
export function parseQmpLine(line: string): QmpLine | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return undefined; // not JSON: QMP never sends that; ignore rather than desynchronise
  }
  // `null`, numbers and strings are JSON too, and `in` throws on them.
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return undefined;
  const m = msg as Record<string, unknown>;
  if ('QMP' in m) return { kind: 'greeting', raw: m };
  if ('event' in m) return { kind: 'event' };
  if (typeof m.id !== 'string' || m.id === '') return undefined;
  if ('error' in m) {
    const e = m.error;
    const o = typeof e === 'object' && e !== null ? (e as { class?: unknown; desc?: unknown }) : {};
    return {
      kind: 'error',
      id: m.id,
      qmpClass: typeof o.class === 'string' ? o.class : 'Error',
      desc: typeof o.desc === 'string' ? o.desc : '',
    };
  }
  return { kind: 'return', id: m.id, value: m.return };
}

function once(sock: net.Socket, event: string): Promise<void> {
  return new Promise((resolve) => sock.once(event, () => resolve()));
}
