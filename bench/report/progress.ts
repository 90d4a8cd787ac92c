// Progress of each timed run on stderr: a redrawn bar on a TTY, plain lines otherwise (logs, CI).
export interface ProgressSink {
  start(label: string, expectedMs: number): void;
  done(label: string, summary: string): void;
  note(line: string): void;
}

export function makeProgress(
  mode: 'bar' | 'lines' | 'none',
  out: NodeJS.WriteStream = process.stderr,
): ProgressSink {
  if (mode === 'none') return { start() {}, done() {}, note() {} };
  if (mode === 'lines') {
    return {
      start: (label, ms) => out.write(`${label}: running (~${(ms / 1000).toFixed(0)} s)\n`),
      done: (label, summary) => out.write(`${label}: ${summary}\n`),
      note: (line) => out.write(`${line}\n`),
    };
  }
  return new BarProgress(out);
}

/** One bar per run; concurrent runs share the line (labels joined), redrawn every 250 ms. */
class BarProgress implements ProgressSink {
  private readonly active = new Map<string, { started: number; expected: number }>();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly out: NodeJS.WriteStream) {}

  start(label: string, expectedMs: number): void {
    this.active.set(label, { started: Date.now(), expected: expectedMs });
    this.timer ??= setInterval(() => this.draw(), 250);
    this.draw();
  }

  done(label: string, summary: string): void {
    this.active.delete(label);
    this.clear();
    this.out.write(`${label}: ${summary}\n`);
    if (!this.active.size && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    } else this.draw();
  }

  note(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
    this.draw();
  }

  private clear(): void {
    this.out.write('\r\x1b[K');
  }

  private draw(): void {
    if (!this.active.size) return;
    const width = Math.max(
      10,
      Math.min(30, Math.floor(((this.out.columns ?? 80) - 20) / this.active.size) - 25),
    );
    const parts = [...this.active].map(([label, a]) => {
      const elapsed = (Date.now() - a.started) / 1000;
      const frac = Math.min(1, elapsed / (a.expected / 1000));
      const filled = Math.round(frac * width);
      return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${elapsed.toFixed(1)}/${(a.expected / 1000).toFixed(0)} s`;
    });
    this.clear();
    this.out.write(parts.join('  ').slice(0, (this.out.columns ?? 200) - 1));
  }
}
