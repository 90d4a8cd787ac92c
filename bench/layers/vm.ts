// Layer `vm`: the workload inside the project's test VM (stack/qemu.ts: a Debian cloud kernel and a
// busybox-static initramfs under QEMU). The guest has no libc, so the bench bundles the host's
// workload binaries with every shared library `ldd` names and the dynamic loader into a tar file,
// attaches it as the VM's first virtio disk (/dev/vda) and unpacks it in the guest with busybox tar;
// each tool runs as `ld-linux --library-path /w/lib /w/real/<tool>`. A second virtio disk (/dev/vdb,
// a preallocated raw file on the same host disk as the native layer's files, cache=none so the
// host page cache does not serve it) is what the I/O workloads read.
// CPU: the QEMU process's utime+stime (/proc/PID/stat) is the host's cost of the whole VM; the guest's
// own accounting of the workload (wrapper shell cutime+cstime inside the guest) is reported beside it.
import fs from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../../lib/errors.ts';
import { componentLogger } from '../../lib/log.ts';
import type { WorkloadCase } from '../workloads/index.ts';
import { pidCpuUsec, runProcess, sharedLibraries, shellQuote, takeStatMarker, which } from './common.ts';
import { type CounterProbe, vmCollectorProbe } from './probe.ts';
import { type BenchLayer, type CaseSession, LayerUnavailableError } from './types.ts';

const log = componentLogger('bench.vm');

export interface VmLayerOptions {
  accel: 'tcg' | 'kvm' | 'auto';
  memoryMb: number;
  /** Working directory (bundle, disks, sockets): on the host disk, not tmpfs (cache=none needs O_DIRECT). */
  workDir: string;
  ioSizeMb: number;
  tools: Map<string, string>;
}

type TestVm = Awaited<ReturnType<typeof import('../../stack/qemu.ts')['startTestVm']>>;

export class VmLayer implements BenchLayer {
  readonly name = 'vm' as const;
  readonly info: Record<string, string> = {};
  private vm: TestVm | undefined;
  private probe: CounterProbe | undefined;

  constructor(private readonly opts: VmLayerOptions) {}

  private unavailable(reason: string): never {
    throw new LayerUnavailableError('vm', reason);
  }

  async setup(cases: readonly WorkloadCase[]): Promise<void> {
    if (!(await which('qemu-system-x86_64'))) {
      this.unavailable('qemu-system-x86_64 is not on PATH; install it with: apt-get install qemu-system-x86');
    }
    let qemu: typeof import('../../stack/qemu.ts');
    try {
      qemu = await import('../../stack/qemu.ts');
    } catch (err) {
      this.unavailable(`the test-VM builder stack/qemu.ts does not load: ${errorMessage(err)}`);
    }
    await fs.mkdir(this.opts.workDir, { recursive: true });
    const bundle = await this.buildBundle(cases);
    const ioDisk = path.join(this.opts.workDir, 'vm-io.raw');
    await preallocate(ioDisk, this.opts.ioSizeMb);
    let assets: Awaited<ReturnType<typeof qemu.ensureTestVmAssets>>;
    try {
      assets = await qemu.ensureTestVmAssets();
    } catch (err) {
      this.unavailable(`cannot build the test VM's kernel and initramfs: ${errorMessage(err)}`);
    }
    const kvmUsable = await fs
      .access('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK)
      .then(() => true)
      .catch(() => false);
    if (this.opts.accel === 'kvm' && !kvmUsable) {
      this.unavailable(
        '--vm-accel kvm, but /dev/kvm is missing or not read-writable (use --vm-accel tcg or auto)',
      );
    }
    const tries: ('kvm' | 'tcg')[] =
      this.opts.accel === 'auto' ? (kvmUsable ? ['kvm', 'tcg'] : ['tcg']) : [this.opts.accel];
    if (this.opts.accel === 'auto' && !kvmUsable) this.info.kvm = 'no usable /dev/kvm';
    for (const accel of tries) {
      const dir = path.join(this.opts.workDir, `vm-${accel}`);
      await fs.mkdir(dir, { recursive: true });
      try {
        this.vm = await qemu.startTestVm({
          name: 'strata-bench',
          accel,
          memoryMb: this.opts.memoryMb,
          cpus: 1,
          workDir: dir,
          qmpSocket: path.join(dir, 'qmp.sock'),
          agentSocket: path.join(dir, 'agent.sock'),
          diskImage: bundle,
          assets,
          bootTimeoutMs: accel === 'kvm' && tries.length > 1 ? 30_000 : 240_000,
          extraArgs: [
            '-drive',
            `file=${ioDisk},format=raw,if=none,id=disk1,cache=none,aio=threads`,
            '-device',
            'virtio-blk-pci,drive=disk1,id=vd1',
          ],
        });
        break;
      } catch (err) {
        if (accel === 'kvm' && tries.length > 1) {
          this.info.kvm = `tried, guest did not boot: ${errorMessage(err).split(/[;\n]/)[0]}`;
          log.warn({ err: errorMessage(err) }, 'KVM guest did not boot; falling back to TCG');
          continue;
        }
        this.unavailable(`the test VM did not start (${accel}): ${errorMessage(err).slice(0, 600)}`);
      }
    }
    const vm = this.vm!;
    this.info.accel = vm.accel;
    this.info.kernel = assets.kernelPackage;
    this.info.guest = `busybox initramfs, ${this.opts.memoryMb} MiB, 1 vCPU; tools bundled with their host libraries`;
    this.info.disk = `virtio-blk raw file, cache=none, aio=threads, ${this.opts.ioSizeMb} MiB`;
    if (vm.bootMs !== undefined) this.info.boot_ms = String(vm.bootMs);
    const unpack = await vm.exec('mkdir -p /w && cd /w && tar xf /dev/vda && ls /w/bin | tr "\\n" " "', {
      timeoutMs: 120_000,
    });
    if (unpack.code !== 0)
      this.unavailable(`unpacking the tool bundle in the guest failed: ${unpack.output}`);
    try {
      this.probe = await vmCollectorProbe(vm.qmpSocket);
    } catch (err) {
      log.warn(
        { err: errorMessage(err) },
        'collectors/vm failed; reading the QEMU process /proc/PID/stat directly',
      );
    }
    this.info.cpu_from = this.probe ? 'collectors/vm' : `/proc/${vm.pid}/stat`;
    const sizes = await vm.exec('cat /sys/block/vdb/size', { timeoutMs: 10_000 });
    if (Number(sizes.output.trim()) * 512 !== this.opts.ioSizeMb * 1024 * 1024) {
      this.unavailable(`the guest's /dev/vdb is not the ${this.opts.ioSizeMb} MiB I/O disk: ${sizes.output}`);
    }
  }

  /** tar of real/<tool>, lib/<every ldd library>, bin/<tool> launcher scripts. */
  private async buildBundle(cases: readonly WorkloadCase[]): Promise<string> {
    const root = path.join(this.opts.workDir, 'bundle');
    await fs.rm(root, { recursive: true, force: true });
    for (const d of ['real', 'lib', 'bin']) await fs.mkdir(path.join(root, d), { recursive: true });
    const tools = new Set<string>();
    for (const c of cases) if (!this.unsupported(c)) for (const b of c.binaries) tools.add(b);
    let loader = '';
    for (const t of tools) {
      const host = this.opts.tools.get(t);
      if (!host) continue;
      await fs.copyFile(await fs.realpath(host), path.join(root, 'real', t));
      for (const lib of await sharedLibraries(host)) {
        const base = path.basename(lib);
        if (/^ld-linux/.test(base)) loader = base;
        await fs.copyFile(await fs.realpath(lib), path.join(root, 'lib', base));
      }
    }
    for (const t of tools) {
      const script = `#!/bin/sh\nexec /w/lib/${loader} --library-path /w/lib /w/real/${t} "$@"\n`;
      await fs.writeFile(path.join(root, 'bin', t), script, { mode: 0o755 });
    }
    const tar = path.join(this.opts.workDir, 'bundle.tar');
    const r = await runProcess(['tar', '-cf', tar, '-C', root, '.'], { timeoutMs: 60_000 });
    if (r.code !== 0) this.unavailable(`tar of the guest tool bundle failed: ${r.stderr}`);
    const size = (await fs.stat(tar)).size;
    this.info.bundle_mb = (size / 1024 / 1024).toFixed(1);
    return tar;
  }

  unsupported(c: WorkloadCase): string | undefined {
    if (c.kind === 'client-server') {
      return 'the test VM has no network device (busybox guest without virtio-net), so network workloads do not run in it';
    }
    return undefined;
  }

  async open(_c: WorkloadCase): Promise<CaseSession> {
    const vm = this.vm;
    if (!vm) this.unavailable('not set up');
    return {
      ioPath: '/dev/vdb',
      ioIsDevice: true,
      cpuSource: this.probe
        ? `${this.probe.source}; guest view from the guest's /proc`
        : `/proc/${vm.pid}/stat of the QEMU process (utime+stime); guest view from the guest's /proc`,
      hostCpuUsec: async () =>
        this.probe ? (await this.probe.read())?.cpu_usage_usec_total : pidCpuUsec(vm.pid),
      ...(this.probe ? { vcpuUsec: async () => (await this.probe?.read())?.vcpu_usec_total } : {}),
      exec: async (argv, o) => {
        const line =
          `cd /tmp; PATH=/w/bin:$PATH; export PATH; ${shellQuote(argv)}; rc=$?; ` +
          'read -r s < /proc/$$/stat; echo "STRATA-STAT $s"; exit $rc';
        const started = performance.now();
        const r = await vm.exec(line, { timeoutMs: o.timeoutMs });
        const wallMs = performance.now() - started;
        const { text, cpuUsec } = takeStatMarker(r.output);
        return {
          code: r.code,
          output: text,
          wallMs,
          ...(cpuUsec !== undefined ? { procCpuUsec: cpuUsec } : {}),
        };
      },
      startServer: async () => {
        throw new LayerUnavailableError('vm', 'no network device in the test VM');
      },
      close: async () => {},
    };
  }

  async close(): Promise<void> {
    await this.probe?.close();
    this.probe = undefined;
    await this.vm?.stop();
    this.vm = undefined;
  }
}

/** A raw disk file of `mb` MiB with every block written (a sparse hole would read without any I/O). */
async function preallocate(file: string, mb: number): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  if (st && st.size === mb * 1024 * 1024) return;
  const fh = await fs.open(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    for (let i = 0; i < mb; i++) await fh.write(chunk, 0, chunk.length, i * chunk.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
