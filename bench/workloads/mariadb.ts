// The `oltp` workload's database: MariaDB from Debian's mariadb-server, the same mariadbd binary in
// every layer. A data directory is initialised once per bench on the host (mariadb-install-db, then
// a bootstrap that creates the `sbtest` database and a `sbtest`@`%` user, so that clients reach it
// from any address: loopback, docker-proxy's bridge address under NAT, the host's tap address for a
// VM). Each layer copies that template into its own data location on first start, so the server
// writes where the layer puts its I/O (host disk, the container's filesystem, a volume, the guest's disk).
import fs from 'node:fs/promises';
import path from 'node:path';
import { MissingPrerequisiteError } from '../../lib/errors.ts';
import { runProcess, shellQuote } from '../layers/common.ts';

export const OLTP_USER = 'sbtest';
export const OLTP_PASSWORD = 'sbtest';
export const OLTP_DATABASE = 'sbtest';
/** Where mariadbd finds its error messages and character sets (Debian's mariadb-server layout). */
export const MARIADB_SHARE = ['/usr/share/mysql/english', '/usr/share/mysql/charsets'];

/** Server options every layer uses. A small redo log keeps the template (and each copy) at ~26 MB. */
const COMMON = [
  '--no-defaults',
  '--user=root',
  '--innodb-log-file-size=8M',
  '--innodb-buffer-pool-size=128M',
  '--lc-messages-dir=/usr/share/mysql',
  '--character-sets-dir=/usr/share/mysql/charsets',
];

export function templateDir(assetDir: string): string {
  return path.join(assetDir, 'mariadb-template');
}

/** Creates the template data directory under `assetDir` unless it is there already. */
export async function ensureMariadbTemplate(assetDir: string, tools: Map<string, string>): Promise<void> {
  const dir = templateDir(assetDir);
  if (await fs.stat(path.join(dir, OLTP_DATABASE)).catch(() => undefined)) return;
  const installDb = tools.get('mariadb-install-db');
  const mariadbd = tools.get('mariadbd');
  if (!installDb || !mariadbd) {
    throw new MissingPrerequisiteError(
      'mariadb-install-db / mariadbd not found; install with: apt-get install mariadb-server',
    );
  }
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(assetDir, { recursive: true });
  const inst = await runProcess(
    [
      installDb,
      ...COMMON.slice(0, 3),
      `--datadir=${dir}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ],
    { timeoutMs: 180_000 },
  );
  if (inst.code !== 0) {
    throw new MissingPrerequisiteError(
      `mariadb-install-db failed (exit ${inst.code}): ${(inst.stdout + inst.stderr).trim().slice(-400)}`,
    );
  }
  // --bootstrap runs without grant tables: FLUSH PRIVILEGES loads them so CREATE USER works.
  const sql = [
    'FLUSH PRIVILEGES;',
    `CREATE DATABASE ${OLTP_DATABASE};`,
    `CREATE USER '${OLTP_USER}'@'%' IDENTIFIED BY '${OLTP_PASSWORD}';`,
    `GRANT ALL ON ${OLTP_DATABASE}.* TO '${OLTP_USER}'@'%';`,
    '',
  ].join('\n');
  const sqlFile = path.join(assetDir, 'bootstrap.sql');
  await fs.writeFile(sqlFile, sql);
  const boot = await runProcess(
    [
      'sh',
      '-c',
      `${shellQuote([mariadbd, ...COMMON, `--datadir=${dir}`, '--bootstrap'])} < "$1"`,
      'sh',
      sqlFile,
    ],
    { timeoutMs: 120_000 },
  );
  if (boot.code !== 0) {
    throw new MissingPrerequisiteError(
      `mariadbd --bootstrap (creating the ${OLTP_DATABASE} user) failed (exit ${boot.code}): ${boot.stderr.trim().slice(-400)}`,
    );
  }
}

/**
 * The server as one shell command: copy the template into `<dataDir>/mariadb` on first start (the
 * layer's own disk), then exec mariadbd there, so the PID the layer tracks is the server's.
 */
export function mariadbServerArgv(assetDir: string, dataDir: string, bind: string, port: number): string[] {
  const d = `${dataDir}/mariadb`;
  const server = shellQuote([
    'mariadbd',
    ...COMMON,
    `--datadir=${d}`,
    `--tmpdir=${d}`,
    `--socket=${d}/mysqld.sock`,
    `--pid-file=${d}/mysqld.pid`,
    `--log-error=${d}/error.log`,
    `--bind-address=${bind}`,
    `--port=${port}`,
    // Clients come from the bridge gateway (NAT) or the tap: no reverse DNS per connection.
    '--skip-name-resolve',
  ]);
  const tpl = templateDir(assetDir);
  return [
    'sh',
    '-c',
    `[ -d ${d}/${OLTP_DATABASE} ] || { rm -rf ${d} && mkdir -p ${d} && cp -a ${tpl}/. ${d}/; } || exit 1; exec ${server}`,
  ];
}
