// Request bodies' memory is recycled (sinks/influxdb/body-pool.ts): a body given back is reused by a later
// take() of a size that fits, and nothing is ever handed to two takers at once.
import { describe, expect, it } from 'vitest';
import { BodyPool } from '../../sinks/influxdb/body-pool.ts';

describe('BodyPool', () => {
  it('hands out exactly the bytes asked for, and reuses given-back memory of a size that fits', () => {
    const pool = new BodyPool();
    const a = pool.take(100_000);
    expect(a.length).toBe(100_000);
    expect(a.buffer.byteLength).toBe(131_072); // powers of two, so that similar sizes fit
    pool.give(a);
    const b = pool.take(120_000);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(120_000);
    expect(pool.stats).toEqual({ reused: 1, allocated: 1 });
    // Too small for the next: a new one.
    pool.give(b);
    const c = pool.take(200_000);
    expect(c.buffer).not.toBe(a.buffer);
    expect(pool.stats).toEqual({ reused: 1, allocated: 2 });
  });

  it('takes the smallest free buffer that fits', () => {
    const pool = new BodyPool();
    const big = pool.take(1_000_000);
    const small = pool.take(70_000);
    pool.give(big);
    pool.give(small);
    expect(pool.take(10).buffer).toBe(small.buffer);
    expect(pool.take(10).buffer).toBe(big.buffer);
  });

  it('never lends one buffer twice: a second give is ignored, as are buffers it did not lend', () => {
    const pool = new BodyPool();
    const a = pool.take(5000);
    pool.give(a);
    pool.give(a);
    expect(pool.size).toBe(1);
    const x = pool.take(5000);
    const y = pool.take(5000);
    expect(x.buffer).toBe(a.buffer);
    expect(y.buffer).not.toBe(x.buffer);
    pool.give(Buffer.allocUnsafe(100_000));
    pool.give(Buffer.from('from node’s shared pool'));
    expect(pool.size).toBe(0);
  });

  it('keeps at most 8 free buffers, none over 16 MiB', () => {
    const pool = new BodyPool();
    const bodies = Array.from({ length: 10 }, () => pool.take(70_000));
    for (const b of bodies) pool.give(b);
    expect(pool.size).toBe(8);
    const other = new BodyPool();
    other.give(other.take(20 * 1024 * 1024));
    expect(other.size).toBe(0);
    other.give(other.take(16 * 1024 * 1024));
    expect(other.size).toBe(1);
  });
});
