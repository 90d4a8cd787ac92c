// kafkajs 2.2.4's RequestQueue (the real class) spins a 1 ms timer forever once a connection has
// had a response; lib/kafka/request-queue.ts stops that without delaying any request.
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { fixIdleRequestQueue } from '../../lib/kafka/request-queue.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const queues: RequestQueue[] = [];

function queue(maxInFlightRequests: number | null = null): RequestQueue {
  const q = new RequestQueue({
    maxInFlightRequests,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: 'test',
    broker: '127.0.0.1:9092',
    logger: quiet,
  });
  queues.push(q);
  return q;
}

let nextId = 1;
/** A request that records when it is sent (kafkajs calls sendRequest when it leaves the queue). */
function request(sent: number[]) {
  const correlationId = nextId++;
  return {
    id: correlationId,
    entry: { correlationId, apiKey: 1, apiName: 'Fetch', apiVersion: 11, resolve() {}, reject() {} },
    expectResponse: true,
    sendRequest: () => sent.push(correlationId),
  };
}

/** How often the queue checks its pending requests in `ms` of an idle connection after one response. */
async function checksWhileIdle(q: RequestQueue, ms: number): Promise<number> {
  let checks = 0;
  const check = q.checkPendingRequests.bind(q);
  q.checkPendingRequests = () => {
    checks++;
    check();
  };
  const sent: number[] = [];
  const r = request(sent);
  q.push(r);
  q.fulfillRequest({ correlationId: r.id, payload: null, size: 0 });
  await new Promise((resolve) => setTimeout(resolve, ms));
  return checks;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => {
  for (const q of queues.splice(0)) {
    q.pending.length = 0;
    q.throttledUntil = -1;
    q.destroy();
  }
});

describe('kafkajs RequestQueue', () => {
  // Order matters: the fix patches the class for the whole process.
  it('as shipped, re-checks an idle queue every millisecond or so (the bug this works around)', async () => {
    const checks = await checksWhileIdle(queue(), 200);
    expect(checks).toBeGreaterThan(20);
    // Stop the loop before the next test: a throttle far away parks its timer.
    queues[0]!.throttledUntil = Date.now() + 3_600_000;
    await sleep(5);
  });

  it('with the fix, does not check an idle queue again', async () => {
    fixIdleRequestQueue();
    fixIdleRequestQueue(); // once per process, however often it is called
    expect(await checksWhileIdle(queue(), 200)).toBe(1); // the check the response itself makes
  });

  it('with the fix, still sends a queued request when a slot frees up, and after a throttle', async () => {
    fixIdleRequestQueue();
    const sent: number[] = [];
    const q = queue(1);
    const a = request(sent);
    const b = request(sent);
    q.push(a);
    q.push(b); // one request in flight at most: b waits
    expect(sent).toEqual([a.id]);
    q.fulfillRequest({ correlationId: a.id, payload: null, size: 0 });
    expect(sent).toEqual([a.id, b.id]);
    q.fulfillRequest({ correlationId: b.id, payload: null, size: 0 });

    // The broker asks for 50 ms of quiet: a request made meanwhile leaves when it is over.
    q.maybeThrottle(50);
    const c = request(sent);
    q.push(c);
    expect(sent).toEqual([a.id, b.id]);
    await sleep(120);
    expect(sent).toEqual([a.id, b.id, c.id]);
  });
});
