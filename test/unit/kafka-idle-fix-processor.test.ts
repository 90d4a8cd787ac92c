// The processor installs the kafkajs idle-loop fix (lib/kafka/request-queue.ts) before it creates
// its clients: building it is enough, no broker needed. Without it every connection spins a 1 ms
// timer (≈ 40 ms of CPU per second). A file of its own: the fix patches kafkajs for the process.
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';
import { describe, expect, it } from 'vitest';
import { createProcessor, resolveProcessorConfig } from '../../processor/index.ts';

describe('kafkajs idle-loop fix', () => {
  it('is installed by the processor', () => {
    const shipped = RequestQueue.prototype.scheduleCheckPendingRequests;
    createProcessor(resolveProcessorConfig({}, { STRATA_METRICS_LISTEN: '' }));
    expect(RequestQueue.prototype.scheduleCheckPendingRequests).not.toBe(shipped);
  });
});
