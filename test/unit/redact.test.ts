// Credentials never printed: redactUrl on the URL forms that carry them, and the output of real
// `strata processor --check-config` / `strata agent --print-config` processes given secrets in
// INFLUX_URL, the webhook URL, DOCKER_HOST and the SASL password.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { redactConfig, redactUrl, redactUrls } from '../../lib/redact.ts';

const STRATA = path.resolve('bin/strata.js');

describe('redactUrl', () => {
  it.each([
    ['http://user:pass@host:8086', 'http://user:***@host:8086'],
    ['http://u:secret@127.0.0.1:8086/', 'http://u:***@127.0.0.1:8086/'],
    ['https://token123@api.example.com/v1', 'https://***@api.example.com/v1'],
    ['http://u:p%40ss@h/path@x', 'http://u:***@h/path@x'], // only the userinfo's @, not one in the path
    ['http://h:8086/query?db=x&u=admin&p=secret', 'http://h:8086/query?db=x&u=admin&p=***'],
    ['https://am.example/api?token=abc&x=1', 'https://am.example/api?token=***&x=1'],
    ['https://h/x?a=1&password=hunter2#frag', 'https://h/x?a=1&password=***#frag'],
    ['https://h/x?Access_Token=t&API-KEY=k&keep=v', 'https://h/x?Access_Token=***&API-KEY=***&keep=v'],
    ['unix:///var/run/docker.sock', 'unix:///var/run/docker.sock'],
    ['tcp://u:pw@10.0.0.1:2375', 'tcp://u:***@10.0.0.1:2375'],
    ['http://127.0.0.1:18086', 'http://127.0.0.1:18086'], // nothing to hide: unchanged, no slash added
    ['not a url', 'not a url'],
  ])('%s -> %s', (input, output) => {
    expect(redactUrl(input)).toBe(output);
  });

  it('redacts every URL inside a message and leaves the rest', () => {
    expect(
      redactUrls(
        'InfluxDB is not reachable at http://u:secret@h:8086 (ECONNREFUSED); webhook https://a/?token=t.',
      ),
    ).toBe('InfluxDB is not reachable at http://u:***@h:8086 (ECONNREFUSED); webhook https://a/?token=***.');
  });

  it('redactConfig masks secret keys and URLs at any depth, without changing the input', () => {
    const cfg = {
      influxdb: { url: 'http://u:s@h', token: 'tok' },
      list: ['https://x/?key=k'],
      n: 1,
      sasl: { saslPassword: 'x' },
    };
    expect(redactConfig(cfg)).toEqual({
      influxdb: { url: 'http://u:***@h', token: '***' },
      list: ['https://x/?key=***'],
      n: 1,
      sasl: { saslPassword: '***' },
    });
    expect(cfg.influxdb.url).toBe('http://u:s@h');
  });
});

function cli(args: string[], env: Record<string, string>): string {
  return execFileSync(process.execPath, [STRATA, ...args], {
    env: { ...process.env, STRATA_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('printed configuration', () => {
  it('strata processor --check-config shows no credential of INFLUX_URL or the webhook URL', () => {
    const out = cli(['processor', '--check-config'], {
      INFLUX_URL: 'http://u:secret@127.0.0.1:8086',
      ALERT_WEBHOOK_URL: 'https://alerts.example/hook?token=secret',
      STRATA_KAFKA_SASL_MECHANISM: 'plain',
      STRATA_KAFKA_SASL_USERNAME: 'u',
      STRATA_KAFKA_SASL_PASSWORD: 'secret',
    });
    expect(out).not.toContain('secret');
    const cfg = JSON.parse(out).config;
    expect(cfg.influxdb.url).toBe('http://u:***@127.0.0.1:8086');
    expect(cfg.webhook.url).toBe('https://alerts.example/hook?token=***');
  }, 60_000);

  it('strata agent --print-config shows no credential of DOCKER_HOST or the SASL password', () => {
    const out = cli(['agent', '--print-config'], {
      DOCKER_HOST: 'tcp://u:secret@127.0.0.1:2375',
      STRATA_KAFKA_SASL_MECHANISM: 'plain',
      STRATA_KAFKA_SASL_USERNAME: 'u',
      STRATA_KAFKA_SASL_PASSWORD: 'secret',
    });
    expect(out).not.toContain('secret');
    expect(JSON.parse(out).config.dockerHost).toBe('tcp://u:***@127.0.0.1:2375');
  }, 60_000);
});
