import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure, runs on captured files under testdata/, no servers) and
// `integration` (real Kafka, InfluxDB, Docker engine, cgroups, QEMU; the global setup starts the
// project's stack unless KAFKA_BROKERS / INFLUX_URL / DOCKER_HOST point at running servers).
export default defineConfig({
  test: {
    // The default report, then one plain "Tests: N passed, N failed" closing line.
    reporters: ['default', './test/setup/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/setup/global-stack.ts'],
          // Shared real servers and 2 cores: one integration file at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
