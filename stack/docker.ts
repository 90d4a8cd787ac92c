// A real Docker engine (Debian's docker.io) on its own socket, data root and bridge, so it never
// clashes with a system Docker or with another strata stack on the same machine. No registry is
// reachable here, so the one image it has is imported offline from busybox-static.

import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnectionError, MissingPrerequisiteError, StrataError } from '../lib/errors.ts';
import {
  defaultCacheDir,
  killPid,
  type Progress,
  pidCommandLine,
  pidsWithMarker,
  runCommand,
  type ServiceHandle,
  silentProgress,
  spawnService,
  stopPid,
  treeRssBytes,
  waitForExit,
  waitUntilReady,
  which,
  withHeartbeat,
} from './util.ts';

export const DEFAULT_DOCKER_IMAGE = 'strata/busybox:latest';
const INSTALL_APT = fileURLToPath(new URL('./install-apt.sh', import.meta.url));
/** sun_path is 108 bytes; containerd adds ".../containerd/containerd.sock.ttrpc" under the exec root. */
const MAX_SOCKET_PATH = 100;

/**
 * Makes sure dockerd and a static busybox exist, installing the Debian packages through
 * stack/install-apt.sh when we are root and have apt-get. Returns dockerd's path.
 */
export async function ensureDockerInstalled(progress: Progress = silentProgress): Promise<string> {
  const missing = () => !which('dockerd') || !staticBusybox();
  if (missing()) {
    const apt = which('apt-get');
    if (process.getuid?.() !== 0 || !apt || !which('dpkg-query')) {
      throw new MissingPrerequisiteError(
        `the Docker engine (dockerd) and a static busybox are needed for the stack's container engine; ` +
          `found dockerd: ${which('dockerd') ?? 'no'}, static busybox: ${staticBusybox() ?? 'no'}. ` +
          `Install them with: sudo bash ${INSTALL_APT} (Debian: apt-get install -y docker.io busybox-static)`,
      );
    }
    progress(`docker: installing Debian packages with ${INSTALL_APT} (first run only)`);
    const started = Date.now();
    await withHeartbeat(progress, 'docker: apt-get install', runCommand('bash', [INSTALL_APT]));
    progress(`docker: Debian packages installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const dockerd = which('dockerd');
  if (!dockerd || !staticBusybox()) {
    throw new MissingPrerequisiteError(
      `dockerd or a static busybox is still missing after ${INSTALL_APT}; install docker.io and busybox-static`,
    );
  }
  return dockerd;
}

/** Path of a statically linked busybox (no PT_INTERP program header), or undefined. */
export function staticBusybox(): string | undefined {
  for (const candidate of [which('busybox'), '/bin/busybox', '/usr/bin/busybox']) {
    if (candidate && existsSync(candidate) && isStaticElf(candidate)) return candidate;
  }
  return undefined;
}

function isStaticElf(file: string): boolean {
  try {
    const elf = readFileSync(file);
    if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false; // ELF64 only
    const phoff = Number(elf.readBigUInt64LE(0x20));
    const phentsize = elf.readUInt16LE(0x36);
    const phnum = elf.readUInt16LE(0x38);
    for (let i = 0; i < phnum; i++) {
      if (elf.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP: dynamic
    }
    return true;
  } catch {
    return false;
  }
}

export interface DockerOptions {
  /** Holds the exec root (socket, pidfile, containerd state) and dockerd.log. */
  dataDir: string;
  /** Images and containers (vfs). Default <dataDir>/data-root. */
  dataRoot?: string;
  cacheDir?: string;
  /** Image to import from busybox-static when missing. */
  image?: string;
  detached?: boolean;
  readyTimeoutMs?: number;
  progress?: Progress;
}

export interface DockerHandle extends ServiceHandle {
  /** "unix:///.../docker.sock", for DOCKER_HOST. */
  readonly host: string;
  readonly socketPath: string;
  readonly image: string;
  /** The bridge containers attach to (created by us, deleted on stop). */
  readonly bridge: string;
}

export async function startDocker(options: DockerOptions): Promise<DockerHandle> {
  const progress = options.progress ?? silentProgress;
  const dockerd = await ensureDockerInstalled(progress);
  const dataDir = path.resolve(options.dataDir);
  const runDir = path.join(dataDir, 'docker-run');
  const dataRoot = path.resolve(options.dataRoot ?? path.join(dataDir, 'data-root'));
  const socketPath = path.join(runDir, 'docker.sock');
  if (path.join(runDir, 'containerd', 'containerd.sock.ttrpc').length > MAX_SOCKET_PATH) {
    throw new StrataError(
      `the docker data dir ${dataDir} is too long for unix socket paths (limit ${MAX_SOCKET_PATH} bytes ` +
        'with containerd/containerd.sock.ttrpc); use a shorter --data-dir or STRATA_STACK_DIR',
    );
  }
  // Two engines on one data root corrupt each other's image and container state.
  const sharing = pidsWithMarker(`--data-root ${dataRoot} `).filter((p) =>
    pidCommandLine(p)?.includes('dockerd'),
  );
  if (sharing.length) {
    throw new StrataError(
      `docker data root ${dataRoot} is in use by dockerd pid ${sharing.join(', ')}; choose another with ` +
        '--docker-data-root or STRATA_DOCKER_DATA_ROOT',
    );
  }
  mkdirSync(runDir, { recursive: true });
  mkdirSync(dataRoot, { recursive: true });
  const logFile = path.join(dataDir, 'dockerd.log');
  // An empty config file: /etc/docker/daemon.json of a system Docker must not leak in (its "hosts"
  // or storage driver would clash with our flags).
  const configFile = path.join(runDir, 'daemon.json');
  writeFileSync(configFile, '{}\n');
  // A dockerd killed before it could clean up leaves its socket and pidfile; both block a restart.
  rmSync(socketPath, { force: true });
  rmSync(path.join(runDir, 'docker.pid'), { force: true });
  const { bridge, subnet } = await ensureBridge(runDir);

  const started = Date.now();
  progress(
    `docker: starting dockerd on unix://${socketPath} (bridge ${bridge} ${subnet}, data root ${dataRoot})`,
  );
  const { pid } = spawnService(
    dockerd,
    [
      '--config-file',
      configFile,
      '--storage-driver',
      'vfs',
      '--data-root',
      dataRoot,
      '--exec-root',
      runDir,
      '--pidfile',
      path.join(runDir, 'docker.pid'),
      '-H',
      `unix://${socketPath}`,
      // Own bridge and no iptables/sysctl changes: a second engine (or a system Docker) keeps its
      // docker0 and firewall rules, and the host's FORWARD policy stays as it was. Published
      // ports on 127.0.0.1 still work through docker-proxy.
      '--bridge',
      bridge,
      '--iptables=false',
      '--ip-masq=false',
      '--ip-forward=false',
      '--userland-proxy=true',
      '--log-level',
      'warn',
    ],
    { logFile, detached: options.detached ?? false },
  );
  const image = options.image ?? DEFAULT_DOCKER_IMAGE;
  try {
    await waitUntilReady(`dockerd (unix://${socketPath})`, () => dockerPing(socketPath), {
      pid,
      logFile,
      timeoutMs: options.readyTimeoutMs ?? 60_000,
      intervalMs: 200,
    });
    await ensureBusyboxImage(socketPath, image, { cacheDir: options.cacheDir, progress });
  } catch (err) {
    await stopDockerd(pid, runDir, bridge);
    throw err;
  }
  return {
    service: 'docker',
    pid,
    address: `unix://${socketPath}`,
    host: `unix://${socketPath}`,
    socketPath,
    image,
    bridge,
    dataDir,
    logFile,
    marker: runDir,
    startMs: Date.now() - started,
    stop: () => stopDockerd(pid, runDir, bridge),
    kill: async () => {
      await killPid(pid, runDir);
      await killLeftovers(runDir);
    },
    rssBytes: () => treeRssBytes(pid),
  };
}

/** Stops dockerd (it stops its containers and containerd), then what it left, then the bridge. */
export async function stopDockerd(pid: number, runDir: string, bridge: string | undefined): Promise<void> {
  await stopPid(pid, runDir, 40_000);
  await killLeftovers(runDir);
  if (bridge) await deleteBridge(bridge);
}

/** containerd and shims of a dockerd that was killed carry the run dir in their command lines. */
async function killLeftovers(runDir: string): Promise<void> {
  for (const leftover of pidsWithMarker(runDir)) {
    await stopPid(leftover, runDir, 5_000);
    await waitForExit(leftover, 5_000);
  }
  await unmountUnder(runDir);
}

/**
 * dockerd bind-mounts its network namespace at <exec-root>/netns/default and leaves the mount
 * behind when it exits; the run dir could then never be deleted (EBUSY) and mounts would pile up.
 * Lazily unmounts everything below `dir`, deepest first.
 */
export async function unmountUnder(dir: string): Promise<void> {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const prefix = `${path.resolve(dir)}/`;
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((p): p is string => p?.startsWith(prefix) === true)
    .sort((a, b) => b.length - a.length);
  const umount = which('umount');
  if (!umount) return;
  for (const point of points) await runCommand(umount, ['-l', point]).catch(() => {});
}

/** The bridge's name is derived from the run dir, so a restart on the same dir finds it again. */
export function bridgeName(runDir: string): string {
  let hash = 0x811c9dc5;
  for (const ch of Buffer.from(runDir)) hash = Math.imul(hash ^ ch, 0x01000193) >>> 0;
  return `strata${hash.toString(16).padStart(8, '0')}`; // 14 chars; Linux allows 15
}

async function ensureBridge(runDir: string): Promise<{ bridge: string; subnet: string }> {
  const ip = which('ip');
  if (!ip) {
    throw new MissingPrerequisiteError(
      'ip (iproute2) is needed to create the Docker engine bridge; install it with: apt-get install -y iproute2',
    );
  }
  const bridge = bridgeName(runDir);
  const existing = await runCommand(ip, ['-4', '-o', 'addr', 'show', 'dev', bridge]).catch(() => undefined);
  const existingNet = existing && /inet (\d+\.\d+\.\d+)\.1\/24/.exec(existing.stdout)?.[1];
  if (existingNet) return { bridge, subnet: `${existingNet}.0/24` };
  if (existing) await runCommand(ip, ['link', 'del', bridge]);

  // 172.30.N.0/24: N from the bridge name, moved on while another interface or route uses it.
  const used =
    (await runCommand(ip, ['-4', '-o', 'route', 'show'])).stdout +
    (await runCommand(ip, ['-4', '-o', 'addr'])).stdout;
  let n = Number.parseInt(bridge.slice(-2), 16) % 250;
  for (let i = 0; i < 250 && used.includes(`172.30.${n}.`); i++) n = (n + 1) % 250;
  const subnet = `172.30.${n}.0/24`;
  await runCommand(ip, ['link', 'add', 'name', bridge, 'type', 'bridge']);
  await runCommand(ip, ['addr', 'add', `172.30.${n}.1/24`, 'dev', bridge]);
  await runCommand(ip, ['link', 'set', bridge, 'up']);
  return { bridge, subnet };
}

/** Deletes our bridge if it exists (nothing else is named strata<hash>). */
export async function deleteBridge(bridge: string): Promise<void> {
  const ip = which('ip');
  if (ip) await runCommand(ip, ['link', 'del', bridge]).catch(() => {});
}

export interface DockerResponse {
  status: number;
  body: string;
}

/** One HTTP request to the Docker Engine API over its unix socket. */
export function dockerRequest(
  socketPath: string,
  method: string,
  urlPath: string,
  body?: unknown,
  options: { contentType?: string; timeoutMs?: number } = {},
): Promise<DockerResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: {
          Host: 'docker',
          ...(body !== undefined ? { 'Content-Type': options.contentType ?? 'application/json' } : {}),
        },
        timeout: options.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new ConnectionError(`docker ${method} ${urlPath}: timed out`)));
    req.on('error', (err) =>
      reject(new ConnectionError(`docker engine at unix://${socketPath}: ${err.message}`, { cause: err })),
    );
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else if (body instanceof Object && 'pipe' in body) (body as NodeJS.ReadableStream).pipe(req);
    else req.end(JSON.stringify(body));
  });
}

export async function dockerPing(socketPath: string): Promise<boolean> {
  try {
    const res = await dockerRequest(socketPath, 'GET', '/_ping', undefined, { timeoutMs: 2000 });
    return res.status === 200 && res.body === 'OK';
  } catch {
    return false;
  }
}

/**
 * Imports `image` (default strata/busybox:latest) from a rootfs tarball of busybox-static unless the
 * engine has it: /bin/busybox plus one symlink per applet (sh, dd, sleep, cat, ...), CMD /bin/sh.
 */
export async function ensureBusyboxImage(
  socketPath: string,
  image = DEFAULT_DOCKER_IMAGE,
  options: { cacheDir?: string; progress?: Progress } = {},
): Promise<void> {
  const tarball = await busyboxRootfsTarball(options.cacheDir ?? defaultCacheDir());
  await importRootfsImage(socketPath, image, tarball, { cmd: ['/bin/sh'], progress: options.progress });
}

/** `docker import` of a rootfs tarball as `image`, with its CMD and ENV, unless the engine has it. */
export async function importRootfsImage(
  socketPath: string,
  image: string,
  tarball: string,
  options: { cmd: readonly string[]; env?: readonly string[]; progress?: Progress },
): Promise<void> {
  const found = await dockerRequest(socketPath, 'GET', `/images/${encodeURIComponent(image)}/json`);
  if (found.status === 200) return;
  const [repo, tag = 'latest'] = splitImage(image);
  const query = new URLSearchParams({ fromSrc: '-', repo, tag });
  query.append('changes', `CMD ${JSON.stringify(options.cmd)}`);
  for (const e of options.env ?? []) query.append('changes', `ENV ${e}`);
  (options.progress ?? silentProgress)(`docker: importing ${image} from ${tarball}`);
  const res = await dockerRequest(socketPath, 'POST', `/images/create?${query}`, createReadStream(tarball), {
    contentType: 'application/x-tar',
    timeoutMs: 300_000,
  });
  // The answer is a JSON progress stream; failures arrive as {"error": ...} with status 200.
  const error = /"error":\s*"([^"]*)"/.exec(res.body)?.[1];
  if (res.status !== 200 || error) {
    throw new ConnectionError(
      `docker import of ${image} failed: HTTP ${res.status} ${error ?? res.body.slice(0, 300)}`,
    );
  }
}

function splitImage(image: string): [string, string | undefined] {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? [image.slice(0, colon), image.slice(colon + 1)] : [image, undefined];
}

/** <cache>/busybox-rootfs.tar, built once from the static busybox with `tar`. */
export async function busyboxRootfsTarball(cacheDir: string): Promise<string> {
  const tarball = path.join(cacheDir, 'busybox-rootfs.tar');
  if (existsSync(tarball)) return tarball;
  const busybox = staticBusybox();
  if (!busybox) {
    throw new MissingPrerequisiteError(
      `a statically linked busybox is needed to build the container image; install it with: apt-get install -y busybox-static`,
    );
  }
  const root = path.join(cacheDir, `busybox-rootfs.tmp-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  for (const dir of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var', 'run']) {
    mkdirSync(path.join(root, dir), { recursive: true });
  }
  writeFileSync(path.join(root, 'bin', 'busybox'), readFileSync(busybox), { mode: 0o755 });
  const { stdout } = await runCommand(busybox, ['--list']);
  for (const applet of stdout.split('\n').map((s) => s.trim())) {
    if (applet && applet !== 'busybox' && /^[\w.[\]-]+$/.test(applet)) {
      symlinkSync('busybox', path.join(root, 'bin', applet));
    }
  }
  writeFileSync(
    path.join(root, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const staging = `${tarball}.tmp-${process.pid}`;
  await runCommand('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', staging, '.']);
  renameSync(staging, tarball);
  rmSync(root, { recursive: true, force: true });
  return tarball;
}
