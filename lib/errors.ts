// One small error tree for the whole product (kafkajs/OpenTelemetry style): every error says
// whether retrying can help, so callers decide between backoff and giving up without string matching.

export class StrataError extends Error {
  readonly retriable: boolean;
  constructor(message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
  }
}

/** A flag, env var or config key is wrong. Names the key and the accepted values. Never retriable. */
export class ConfigError extends StrataError {}

/** A server (Kafka, InfluxDB, Docker, QMP) could not be reached or answered an error. */
export class ConnectionError extends StrataError {
  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, { retriable: options.retriable ?? true, cause: options.cause });
  }
}

/** Input that can never become valid (malformed file, message of an unknown schema). */
export class InvalidDataError extends StrataError {}

/** A prerequisite (java, mvn, go, apt package) is missing; the message says how to install it. */
export class MissingPrerequisiteError extends StrataError {}

/** A bounded buffer or queue is full; the caller counts what it dropped. */
export class BufferFullError extends StrataError {
  constructor(message: string) {
    super(message, { retriable: true });
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Node's system error code (ENOENT, EACCES, ECONNREFUSED...), if any. */
export function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}
