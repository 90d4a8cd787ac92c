// A fix for kafkajs 2.2.4, its last release: every broker connection spins a 1 ms timer forever.
//
// After its first response, a connection's RequestQueue calls scheduleCheckPendingRequests(),
// which arms setTimeout(check, throttledUntil − now). Unthrottled, throttledUntil is −1, so the
// delay is negative (run in 1 ms), and the check re-arms the timer whether or not anything is
// pending (tulios/kafkajs#1556, #1604, #1704; fixes proposed in #1667 and #1768, never merged).
// Measured here with one idle producer: 38–43 ms of CPU per second (≈ 4 % of a core) with it,
// ≈ 4 ms/s without — on every node of a fleet, and the processor's consumer, producer and admin.
//
// The fix is the one proposed upstream: with nothing pending and no throttling in force there is
// nothing to check later. Nothing is lost: a request that cannot go out at once is queued by
// push(), which schedules its own check; a response frees a slot and checks the queue; a throttle
// with requests pending is scheduled as before (test/unit/kafka-request-queue.test.ts).
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';

let installed = false;

/** Patches kafkajs' RequestQueue once per process (createKafka, client.ts, calls it for every client). */
export function fixIdleRequestQueue(): void {
  if (installed) return;
  installed = true;
  const original = RequestQueue.prototype.scheduleCheckPendingRequests;
  RequestQueue.prototype.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(
    this: RequestQueue,
  ): void {
    if (this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
    original.call(this);
  };
}
