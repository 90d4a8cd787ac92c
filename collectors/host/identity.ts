// Node identity (the Kafka message key and the `host` entity id) and inventory labels.
// Identity order: explicit config, STRATA_NODE_ID, the machine-id under HOST_ETC (default /etc;
// Telegraf's convention for agents in containers), the hostname. The machine-id survives reboots
// and renames, which is what a time series key needs.
// Inventory comes from systeminformation, which spawns and reads a lot (≈150 ms here): call it once
// at start, never per tick.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Logger } from '../../lib/log.ts';
import type { NodeIdentity } from '../../schemas/sample.ts';

export interface IdentityOptions {
  /** Explicit node id (config `nodeId`). */
  nodeId?: string;
  env?: NodeJS.ProcessEnv;
  /** Collect inventory labels with systeminformation (default true). */
  inventory?: boolean;
  log?: Logger;
}

export async function machineId(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const etc = env.HOST_ETC ?? '/etc';
  for (const path of [`${etc}/machine-id`, `${env.HOST_VAR ?? '/var'}/lib/dbus/machine-id`]) {
    try {
      const id = (await readFile(path, 'utf8')).trim();
      if (id) return id;
    } catch {
      // not there: try the next source
    }
  }
  return undefined;
}

export async function resolveNodeIdentity(opts: IdentityOptions = {}): Promise<NodeIdentity> {
  const env = opts.env ?? process.env;
  const hostname = os.hostname();
  const id = opts.nodeId || env.STRATA_NODE_ID || (await machineId(env)) || hostname;
  const labels = opts.inventory === false ? {} : await inventoryLabels(opts.log);
  return { id, hostname, labels };
}

/** cpu_model, cpu_cores, os, kernel, arch, virtualization; empty values left out. Never throws. */
export async function inventoryLabels(log?: Logger): Promise<Record<string, string>> {
  const labels: Record<string, string> = {};
  try {
    const si = await import('systeminformation');
    const [cpu, osInfo, system] = await Promise.all([si.cpu(), si.osInfo(), si.system()]);
    const model = [cpu.manufacturer, cpu.brand].filter(Boolean).join(' ').trim();
    if (model) labels['cpu_model'] = model;
    if (cpu.cores) labels['cpu_cores'] = String(cpu.cores);
    const osName = [osInfo.distro, osInfo.release].filter(Boolean).join(' ').trim();
    if (osName) labels['os'] = osName;
    if (osInfo.kernel) labels['kernel'] = osInfo.kernel;
    if (osInfo.arch) labels['arch'] = osInfo.arch;
    labels['virtualization'] = system.virtual ? system.virtualHost || 'virtual' : 'none';
  } catch (err) {
    log?.warn({ err }, 'could not collect inventory labels with systeminformation; continuing without');
  }
  return labels;
}
