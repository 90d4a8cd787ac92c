// What test/setup/global-stack.ts hands to integration tests: `inject('kafkaBrokers')` etc.
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    /** "127.0.0.1:PORT": one broker, for kafkajs `brokers: [inject('kafkaBrokers')]`. */
    kafkaBrokers: string;
    /** "http://127.0.0.1:PORT" of InfluxDB 1.8 (/api/v2/write, /query, Flux). */
    influxUrl: string;
    /** Database that exists on influxUrl ("strata"); the v2 bucket is `${db}/autogen`. */
    influxDatabase: string;
    /** "unix:///.../docker.sock" of a Docker engine (DOCKER_HOST syntax). */
    dockerHost: string;
    /** An image present on dockerHost, imported offline from busybox-static ("strata/busybox:latest"). */
    dockerImage: string;
  }
}
