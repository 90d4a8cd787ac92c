// Hostile in-guest agent streams for the guest collector's bounds (unit and integration tests).
// The good part of every frame is a real record captured from the test VM's virtio-serial socket
// (testdata/guest/idle.stream); only the part under attack is replaced.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const IDLE = readFileSync(
  fileURLToPath(new URL('../../testdata/guest/idle.stream', import.meta.url)),
  'latin1',
);

/** The captured records, verbatim (seq 1..4). */
export const CAPTURED_RECORDS: string[] = IDLE.split(/(?=STRATA-GUEST )/);

/** The captured record's sections, in order (name → contents). */
function capturedSections(): Array<[string, string]> {
  const rec = CAPTURED_RECORDS[0]!;
  const body = rec.slice(rec.indexOf('\n') + 1, rec.indexOf('STRATA-END'));
  const out: Array<[string, string]> = [];
  for (const part of body.split(/^--- /m)) {
    if (part === '') continue;
    const nl = part.indexOf('\n');
    out.push([part.slice(0, nl), part.slice(nl + 1)]);
  }
  return out;
}
const SECTIONS = capturedSections();

/** A record of the captured files with some sections replaced (or added). */
export function record(seq: number, replace: Record<string, string> = {}): string {
  const parts = [`STRATA-GUEST 1 ${seq} ${seq}.00\n`];
  const done = new Set<string>();
  for (const [name, text] of SECTIONS) {
    parts.push(`--- ${name}\n${replace[name] ?? text}`);
    done.add(name);
  }
  for (const [name, text] of Object.entries(replace)) if (!done.has(name)) parts.push(`--- ${name}\n${text}`);
  parts.push(`STRATA-END ${seq}\n`);
  return parts.join('');
}

const NETDEV_HEAD =
  'Inter-|   Receive                                                |  Transmit\n' +
  ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n';

/** /proc/net/dev with `n` interfaces named by `name(i)`. */
export function netdev(n: number, name: (i: number) => string): string {
  const lines = [NETDEV_HEAD];
  for (let i = 0; i < n; i++) lines.push(`${name(i)}: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n`);
  return lines.join('');
}

/** A record whose net/dev has `n` interfaces never seen before (a series-cardinality attack). */
export function cardinalityRecord(seq: number, n = 3500): string {
  return record(seq, { 'net/dev': netdev(n, (i) => `r${seq}i${i}`) });
}

/** A record whose diskstats has `n` malformed lines after the real ones (a log-flood attack). */
export function badLinesRecord(seq: number, n = 60_000): string {
  const diskstats = SECTIONS.find(([name]) => name === 'diskstats')![1];
  return record(seq, { diskstats: diskstats + 'bad line\n'.repeat(n) });
}

/** Names a hostile guest or container picks to drive a terminal: colours, window title, screen clear. */
export const ESCAPE_NAMES = [
  '\x1b[31mred\x1b[0m',
  '\x1b]0;owned\x07',
  '\x1b[2J\x1b[H',
  'bell\x07',
  'c1\u009b31m',
];
