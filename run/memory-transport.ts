// The in-memory transport of `strata run`: the agent encodes each tick exactly as for Kafka, and
// this transport hands the bytes to the same decoder the processor uses (schemas/sample.ts). Only
// the broker is missing from the path, so `strata run` exercises the pipeline's real code.
import type { Tick } from '../agent/buffer.ts';
import type { Transport } from '../agent/publisher.ts';
import { decodeSampleMessage, type SampleMessage } from '../schemas/sample.ts';

export class MemoryTransport implements Transport {
  readonly name = 'memory';
  readonly target = 'in-process pipeline';
  rejected = 0;
  lastRejection = '';

  constructor(private readonly onMessage: (message: SampleMessage) => void | Promise<void>) {}

  async start(): Promise<void> {}

  async send(ticks: readonly Tick[]): Promise<void> {
    for (const tick of ticks) {
      const decoded = decodeSampleMessage(tick.value);
      if (!decoded.ok) {
        // The agent produced something the schema rejects: a bug worth showing, not a crash.
        this.rejected++;
        this.lastRejection = decoded.reason;
        continue;
      }
      await this.onMessage(decoded.message);
    }
  }

  async shutdown(): Promise<void> {}
}
