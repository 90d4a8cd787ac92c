// The host block device behind a VM's disk image: the file's st_dev (st_rdev for a raw block
// device) → /sys/dev/block/MAJ:MIN → the whole disk the host collector reports (a partition's
// parent; a device-mapper or md device with a single underlying device is followed down to it).
// The overhead processor uses it (label `host_device`) to separate the hypervisor's share of the
// added I/O latency from the device's own. Best effort: tmpfs, network file systems, or several
// underlying devices give no answer.
import fs from 'node:fs/promises';
import path from 'node:path';

/** Linux dev_t (new encoding) → [major, minor]. */
export function devMajorMinor(dev: bigint): [number, number] {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return [major, minor];
}

export async function backingDevice(file: string, sys: string): Promise<string | undefined> {
  let st: import('node:fs').BigIntStats;
  try {
    st = await fs.stat(file, { bigint: true });
  } catch {
    return undefined;
  }
  const [major, minor] = devMajorMinor(st.isBlockDevice() ? st.rdev : st.dev);
  if (major === 0) return undefined; // anonymous device: tmpfs, overlay, btrfs subvolume...
  return resolveWholeDisk(`${sys}/dev/block/${major}:${minor}`, sys, 0);
}

async function resolveWholeDisk(sysLink: string, sys: string, depth: number): Promise<string | undefined> {
  if (depth > 4) return undefined;
  let target: string;
  try {
    target = await fs.readlink(sysLink);
  } catch {
    return undefined;
  }
  const name = path.basename(target);
  if (await exists(`${sysLink}/partition`)) return path.basename(path.dirname(target));
  let slaves: string[] = [];
  try {
    slaves = await fs.readdir(`${sys}/class/block/${name}/slaves`);
  } catch {}
  if (slaves.length === 1) return resolveWholeDisk(`${sys}/class/block/${slaves[0]}`, sys, depth + 1);
  if (slaves.length > 1) return undefined; // striped or mirrored: no single device to compare with
  return name;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
