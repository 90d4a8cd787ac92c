// `--output ndjson`: one JSON line per tick on a stream (stdout), for debugging, tests and piping
// into other tools. Honours backpressure so a slow reader buffers in the TickBuffer (bounded),
// not in the stream.
import type { Writable } from 'node:stream';
import type { Tick } from './buffer.ts';
import type { Transport } from './publisher.ts';

const NEWLINE = Buffer.from('\n');

export class NdjsonTransport implements Transport {
  readonly name = 'ndjson';
  readonly target: string;
  constructor(
    private readonly out: Writable = process.stdout,
    target = 'stdout',
  ) {
    this.target = target;
  }
  async start(): Promise<void> {}
  async send(ticks: readonly Tick[]): Promise<void> {
    const parts: Buffer[] = [];
    for (const t of ticks) parts.push(t.value, NEWLINE);
    await new Promise<void>((resolve, reject) => {
      this.out.write(Buffer.concat(parts), (err) => (err ? reject(err) : resolve()));
    });
  }
  async shutdown(): Promise<void> {}
}

/** Discards ticks (benchmarks measure the collect and encode path alone). */
export class NullTransport implements Transport {
  readonly name = 'null';
  readonly target = '/dev/null';
  sent = 0;
  async start(): Promise<void> {}
  async send(ticks: readonly Tick[]): Promise<void> {
    this.sent += ticks.length;
  }
  async shutdown(): Promise<void> {}
}
