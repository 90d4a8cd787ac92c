// Series-cardinality bounds for what one guest publishes. Every device, interface and container
// name a guest reports becomes InfluxDB series, and the guest picks them: a guest inventing 3,500
// interface names a record would create 17,500 series in 12 s. So per guest:
// - a name must be clean (lib/terminal.ts: no control characters, at most maxNameLength);
// - at most maxInstances devices, and interfaces, per entity;
// - at most maxNewInstancesPerTick names never seen before per tick;
// - at most maxInstanceNames distinct names remembered; a name unseen for instanceNameTtl is
//   forgotten, which makes room for a new one.
// Known names are kept first, so a flood of new names cannot push out the series already there.
import { isCleanName } from '../../lib/terminal.ts';
import type { InstanceMetrics } from '../../schemas/sample.ts';

export type InstanceKind = 'device' | 'interface' | 'container';
export type DropReason = 'bad_name' | 'max_instances' | 'new_per_tick' | 'names_cap';

export interface InstanceBounds {
  maxInstances: number;
  maxNewPerTick: number;
  maxNames: number;
  ttlMs: number;
  maxNameLength: number;
}

export class GuestInstanceNames {
  /** name key → time it was last published. */
  private readonly seen = new Map<string, number>();
  private newThisTick = 0;
  private evictedThisTick = false;
  private now = 0;
  /** Drops since the last `takeDrops()`, by kind and reason. */
  private drops = new Map<string, number>();

  constructor(private readonly b: InstanceBounds) {}

  get size(): number {
    return this.seen.size;
  }

  beginTick(now: number): void {
    this.now = now;
    this.newThisTick = 0;
    this.evictedThisTick = false;
  }

  /** Whether `key` may be published this tick (a known name always may). */
  admit(kind: InstanceKind, key: string): boolean {
    if (this.seen.has(key)) {
      this.seen.set(key, this.now);
      return true;
    }
    if (this.newThisTick >= this.b.maxNewPerTick) return this.drop(kind, 'new_per_tick');
    if (this.seen.size >= this.b.maxNames && !this.evict()) return this.drop(kind, 'names_cap');
    this.seen.set(key, this.now);
    this.newThisTick++;
    return true;
  }

  /** True when `name` is clean; counts it as dropped otherwise. */
  cleanName(kind: InstanceKind, name: string): boolean {
    return isCleanName(name, this.b.maxNameLength) || this.drop(kind, 'bad_name');
  }

  /**
   * The entity's devices or interfaces within the bounds: clean names only, known ones first,
   * at most maxInstances. Returns the same object when nothing was cut (the common case).
   */
  cap<T extends InstanceMetrics | { counters: Record<string, number> }>(
    kind: 'device' | 'interface',
    entityId: string,
    instances: Record<string, T> | undefined,
  ): Record<string, T> | undefined {
    if (!instances) return instances;
    const names = Object.keys(instances);
    const prefix = `${entityId}\u0000${kind}\u0000`;
    let allKnown = names.length <= this.b.maxInstances;
    for (let i = 0; allKnown && i < names.length; i++) allKnown = this.seen.has(prefix + names[i]);
    if (allKnown) {
      for (const n of names) this.seen.set(prefix + n, this.now);
      return instances;
    }
    const out: Record<string, T> = {};
    let kept = 0;
    const fresh: string[] = [];
    for (const n of names) {
      if (!this.seen.has(prefix + n)) fresh.push(n);
      else if (kept < this.b.maxInstances) {
        this.seen.set(prefix + n, this.now);
        out[n] = instances[n]!;
        kept++;
      } else this.drop(kind, 'max_instances');
    }
    for (const n of fresh) {
      if (!this.cleanName(kind, n)) continue;
      if (kept >= this.b.maxInstances) this.drop(kind, 'max_instances');
      else if (this.admit(kind, prefix + n)) {
        out[n] = instances[n]!;
        kept++;
      }
    }
    return out;
  }

  /** Drops counted since the last call, as `kind\u0000reason` → count. */
  takeDrops(): Map<string, number> {
    const d = this.drops;
    this.drops = new Map();
    return d;
  }

  private drop(kind: InstanceKind, reason: DropReason): false {
    const k = `${kind}\u0000${reason}`;
    this.drops.set(k, (this.drops.get(k) ?? 0) + 1);
    return false;
  }

  /** Forgets names unseen for ttlMs; at most one sweep a tick (it walks every name). */
  private evict(): boolean {
    if (this.evictedThisTick) return false;
    this.evictedThisTick = true;
    for (const [k, at] of this.seen) if (this.now - at > this.b.ttlMs) this.seen.delete(k);
    return this.seen.size < this.b.maxNames;
  }
}
