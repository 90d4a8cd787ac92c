// Switches this host's KSM on for a test and back to the state it found (root only).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const KSM = '/sys/kernel/mm/ksm';
/** The attributes a test changes; restored in this order (run last, so it stops with the old pace). */
const KEYS = ['pages_to_scan', 'sleep_millisecs', 'run'] as const;

export type KsmState = Record<(typeof KEYS)[number], string>;

export function ksmAvailable(): boolean {
  return existsSync(`${KSM}/run`) && process.getuid?.() === 0;
}

/**
 * run=1 and a brisk pace (1000 pages every 20 ms: 200 MB/s of scanning, a few seconds for two small
 * guests); returns the previous state for restoreKsm.
 */
export function ksmOn(pagesToScan = 1000, sleepMs = 20): KsmState {
  const saved = Object.fromEntries(
    KEYS.map((k) => [k, readFileSync(`${KSM}/${k}`, 'utf8').trim()]),
  ) as KsmState;
  writeFileSync(`${KSM}/pages_to_scan`, String(pagesToScan));
  writeFileSync(`${KSM}/sleep_millisecs`, String(sleepMs));
  writeFileSync(`${KSM}/run`, '1');
  return saved;
}

/**
 * Puts back what ksmOn found. A previous run=0 after this test's run=1 leaves merged pages merged
 * (KSM stopped, not unmerged): they belong to VMs the test stops, so they go with them.
 */
export function restoreKsm(saved: KsmState): void {
  for (const k of KEYS) writeFileSync(`${KSM}/${k}`, saved[k]);
}

export function ksmFile(name: string): number {
  return Number(readFileSync(`${KSM}/${name}`, 'utf8'));
}
