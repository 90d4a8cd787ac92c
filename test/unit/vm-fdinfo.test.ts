// Taps QEMU holds as file descriptors (libvirt's -netdev tap,fd=N): the tun fdinfo parser on real
// fdinfo texts (testdata/vm, captured by testdata/vm/capture-fdinfo.py), and the /proc/PID/fd scan
// on a HOST_PROC-style tree built from them.
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTunFdinfo } from '../../collectors/vm/parsers.ts';
import { tunFdTaps } from '../../collectors/vm/tapfds.ts';

const fdinfo = (name: string) => readFileSync(`testdata/vm/${name}`, 'latin1');

describe('parseTunFdinfo', () => {
  it('reads the interface name of a tap fd (iff:\\t<name>)', () => {
    expect(fdinfo('fdinfo-tap')).toMatch(/^iff:\tstratafd0$/m);
    expect(parseTunFdinfo(fdinfo('fdinfo-tap'))).toBe('stratafd0');
  });

  it('gives the same name for each queue of a multiqueue tap', () => {
    expect(parseTunFdinfo(fdinfo('fdinfo-tap-mq-q0'))).toBe('stratafd1');
    expect(parseTunFdinfo(fdinfo('fdinfo-tap-mq-q1'))).toBe('stratafd1');
  });

  it('has no name for a tun fd not attached yet (empty iff:) nor for another file', () => {
    expect(fdinfo('fdinfo-tun-unattached')).toMatch(/^iff:\t$/m);
    expect(parseTunFdinfo(fdinfo('fdinfo-tun-unattached'))).toBeUndefined();
    expect(parseTunFdinfo(fdinfo('fdinfo-regular-file'))).toBeUndefined();
  });

  it('rejects malformed input', () => {
    expect(parseTunFdinfo('')).toBeUndefined();
    expect(parseTunFdinfo('garbage')).toBeUndefined();
    expect(parseTunFdinfo('pos:\t0\niff\tvnet0\n')).toBeUndefined(); // no colon
    expect(parseTunFdinfo('pos:\t0\nxiff:\tvnet0\n')).toBeUndefined(); // not at line start
    expect(parseTunFdinfo('iff:\tthis-name-is-too-long\n')).toBeUndefined(); // > 15 bytes (IFNAMSIZ-1)
    expect(parseTunFdinfo('iff:\tvnet 0\n')).toBeUndefined();
    expect(parseTunFdinfo('iff:\t../x\n')).toBeUndefined();
    // Tolerated: no trailing newline, CRLF, a space instead of the tab.
    expect(parseTunFdinfo('pos:\t0\niff:\tvnet12')).toBe('vnet12');
    expect(parseTunFdinfo('iff:\tvnet3\r\n')).toBe('vnet3');
    expect(parseTunFdinfo('iff: vnet4\n')).toBe('vnet4');
  });
});

describe('tunFdTaps on a HOST_PROC tree', () => {
  let proc: string;
  const PID = 4242;

  beforeAll(async () => {
    proc = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-fdproc-'));
    const fd = path.join(proc, String(PID), 'fd');
    const info = path.join(proc, String(PID), 'fdinfo');
    await fs.mkdir(fd, { recursive: true });
    await fs.mkdir(info, { recursive: true });
    const fds: [number, string, string][] = [
      [0, '/dev/null', 'fdinfo-regular-file'],
      [3, '/etc/hostname', 'fdinfo-regular-file'],
      [21, '/dev/net/tun', 'fdinfo-tap-mq-q0'],
      [22, '/dev/net/tun', 'fdinfo-tap-mq-q1'],
      [23, '/dev/net/tun', 'fdinfo-tun-unattached'],
      [30, '/dev/net/tun', 'fdinfo-tap'],
    ];
    for (const [n, target, text] of fds) {
      await fs.symlink(target, path.join(fd, String(n)));
      await fs.writeFile(path.join(info, String(n)), fdinfo(text));
    }
    // A tun fd closed between the listing and the fdinfo read: skipped.
    await fs.symlink('/dev/net/tun', path.join(fd, '40'));
  });
  afterAll(async () => {
    await fs.rm(proc, { recursive: true, force: true });
  });

  it('finds the tap names, multiqueue fds deduplicated', async () => {
    const scan = await tunFdTaps(proc, PID);
    expect(scan.taps.sort()).toEqual(['stratafd0', 'stratafd1']);
    expect(scan.fds).toBe(7);
    expect(scan.tunFds).toBe(5);
  });

  it('throws when the fd directory cannot be listed (the caller falls back to the command line)', async () => {
    await expect(tunFdTaps(proc, PID + 1)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
