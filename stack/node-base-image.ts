// A Node.js base image made offline from this machine's own Node runtime, for building strata's
// Dockerfile where no registry is reachable (`docker build --build-arg BASE=<this image>`).
//
// It is the busybox rootfs the stack already imports (sh and the usual applets) plus:
// - this process's node binary at /usr/bin/node and the shared libraries `ldd` says it loads,
//   copied to the same paths (the loader, libc, libstdc++...);
// - npm (and npx) from the machine's global node_modules, linked into /usr/bin;
// - /usr/bin/env, which npm's `#!/usr/bin/env node` needs;
// - the machine's CA bundle (/etc/ssl/certs/ca-certificates.crt) with NODE_EXTRA_CA_CERTS pointing at
//   it, so that `npm ci` in a build trusts what the host trusts (a TLS-intercepting proxy's CA).
// What the official node:20-bookworm-slim gives a Dockerfile (node, npm, sh, a root home) is there;
// nothing else is, so a Dockerfile step that needs more fails here as it would on a slim base.
import { cpSync, existsSync, mkdirSync, realpathSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { MissingPrerequisiteError } from '../lib/errors.ts';
import { busyboxRootfsTarball, importRootfsImage } from './docker.ts';
import { type Progress, runCommand, silentProgress, which } from './util.ts';

const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Bumped whenever what goes into the rootfs changes, so a cached tarball or image is not reused. */
const RECIPE = 3;

/** The tag of the base image for this machine's Node version, e.g. strata/node-base:v20.20.2-r2. */
export function nodeBaseImageName(): string {
  return `strata/node-base:${process.version}-r${RECIPE}`;
}

/** Imports the Node base image into the engine at `socketPath` unless it has it; returns its name. */
export async function ensureNodeBaseImage(
  socketPath: string,
  cacheDir: string,
  progress: Progress = silentProgress,
): Promise<string> {
  const image = nodeBaseImageName();
  const tarball = await nodeRootfsTarball(cacheDir, progress);
  const env = ['PATH=/usr/local/bin:/usr/bin:/bin'];
  if (existsSync(CA_BUNDLE)) env.push(`NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`);
  await importRootfsImage(socketPath, image, tarball, { cmd: ['node'], env, progress });
  return image;
}

/** <cache>/node-rootfs-<version>.tar, built once. */
export async function nodeRootfsTarball(
  cacheDir: string,
  progress: Progress = silentProgress,
): Promise<string> {
  const tarball = path.join(cacheDir, `node-rootfs-${process.version}-r${RECIPE}.tar`);
  if (existsSync(tarball)) return tarball;
  const node = realpathSync(process.execPath);
  const npmCli = which('npm');
  if (!npmCli) {
    throw new MissingPrerequisiteError(
      `npm was not found on PATH next to ${node}; the Node base image needs it (install Node.js with npm)`,
    );
  }
  // .../lib/node_modules/npm/bin/npm-cli.js -> .../lib/node_modules/npm
  const npmRoot = path.resolve(path.dirname(realpathSync(npmCli)), '..');
  progress(`docker: building a Node ${process.version} base rootfs from ${node} and ${npmRoot}`);

  const root = path.join(cacheDir, `node-rootfs.tmp-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  await runCommand('tar', ['-C', root, '-xf', await busyboxRootfsTarball(cacheDir)]);
  for (const dir of ['usr/bin', 'usr/lib/node_modules', 'usr/local/bin']) {
    mkdirSync(path.join(root, dir), { recursive: true });
  }
  cpSync(node, path.join(root, 'usr/bin/node'));
  for (const lib of await sharedLibraries(node)) {
    mkdirSync(path.join(root, path.dirname(lib)), { recursive: true });
    cpSync(realpathSync(lib), path.join(root, lib));
  }
  cpSync(npmRoot, path.join(root, 'usr/lib/node_modules/npm'), { recursive: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/bin/npx'));
  symlinkSync('/bin/busybox', path.join(root, 'usr/bin/env'));
  if (existsSync(CA_BUNDLE)) {
    mkdirSync(path.join(root, path.dirname(CA_BUNDLE)), { recursive: true });
    cpSync(realpathSync(CA_BUNDLE), path.join(root, CA_BUNDLE));
  }

  const staging = `${tarball}.tmp-${process.pid}`;
  await runCommand('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', staging, '.']);
  renameSync(staging, tarball);
  rmSync(root, { recursive: true, force: true });
  return tarball;
}

/** Absolute paths of the shared objects `ldd` resolves for `binary`, the dynamic loader included. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await runCommand('ldd', [binary]);
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}
