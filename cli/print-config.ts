// What `--print-config` prints, the same shape for every command: the resolved config with every
// secret masked, and where each explicitly set key came from (the rest are defaults).
import type { AgentConfig } from '../agent/config.ts';
import { redactConfig } from '../lib/redact.ts';
import type { ProcessorConfig } from '../processor/config.ts';

export function printableAgentConfig(
  config: AgentConfig,
  enabled: readonly string[],
  sources: Map<string, string>,
) {
  // Secrets masked wherever they are: the SASL password and credentials inside URLs (DOCKER_HOST).
  const shown = redactConfig(config);
  if (shown.kafka.sasl) shown.kafka.sasl.password = '***';
  return { config: shown, enabledCollectors: enabled, sources: Object.fromEntries(sources) };
}

export function printableProcessorConfig(config: ProcessorConfig, sources: Map<string, string>) {
  // token/password keys and URLs (INFLUX_URL with user:pass@, webhook ?token=).
  const shown = redactConfig(config);
  if (shown.influxdb.token) shown.influxdb.token = '***';
  if (shown.influxdb.password) shown.influxdb.password = '***';
  if (shown.kafka.sasl) shown.kafka.sasl.password = '***';
  return { config: shown, sources: Object.fromEntries(sources) };
}
