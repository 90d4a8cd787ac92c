// The one kafkajs internal strata touches (lib/kafka/request-queue.ts): kafkajs ships no types for it.
declare module 'kafkajs/src/network/requestQueue/index.js' {
  export default class RequestQueue {
    constructor(options: {
      maxInFlightRequests: number | null;
      requestTimeout: number;
      enforceRequestTimeout: boolean;
      clientId: string;
      broker: string;
      logger: {
        debug(...a: unknown[]): void;
        info(...a: unknown[]): void;
        warn(...a: unknown[]): void;
        error(...a: unknown[]): void;
      };
    });
    pending: unknown[];
    throttledUntil: number;
    push(request: {
      entry: {
        correlationId: number;
        apiKey: number;
        apiName: string;
        apiVersion: number;
        resolve(response: unknown): void;
        reject(error: Error): void;
      };
      expectResponse: boolean;
      sendRequest(): void;
    }): void;
    maybeThrottle(ms: number | null): void;
    fulfillRequest(response: { correlationId: number; payload: Buffer | null; size: number }): void;
    checkPendingRequests(): void;
    scheduleCheckPendingRequests(): void;
    destroy(): void;
  }
}
