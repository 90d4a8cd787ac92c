// The terminal side of `strata run`: the alternate screen (no frame ever lands in the scrollback),
// frames drawn from the top-left over the previous one (no clear, no flicker), keys read raw so
// that `q` and Ctrl-C quit, and the terminal put back on every way out: quit, an error, a second
// Ctrl-C, process.exit. After the view ends, its last frame is printed once on the normal screen.
import { writeSync } from 'node:fs';

const ALT_ON = '\x1b[?1049h';
const ALT_OFF = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const HOME = '\x1b[H';
const CLEAR_EOL = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

export class Screen {
  private active = false;
  private readonly onExit = () => this.restoreSync();

  constructor(
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly input: NodeJS.ReadStream = process.stdin,
  ) {}

  /** Takes the terminal: alternate screen, hidden cursor, raw keys. `onQuit` on q, Q or Ctrl-C. */
  enter(onQuit: () => void, onResize: () => void): void {
    this.active = true;
    process.on('exit', this.onExit);
    this.out.write(`${ALT_ON}${CURSOR_HIDE}${HOME}${CLEAR_BELOW}`);
    this.out.on('resize', onResize);
    if (this.input.isTTY) {
      this.input.setRawMode(true);
      this.input.setEncoding('utf8');
      this.input.on('data', (keys: string) => {
        // Raw mode: Ctrl-C arrives as \x03, not as SIGINT.
        for (const k of keys) if (k === 'q' || k === 'Q' || k === '\x03') onQuit();
      });
      this.input.resume();
    }
  }

  /** One frame over the previous one: each line cleared to its end, everything below cleared. */
  draw(frame: string): void {
    if (!this.active) return;
    this.out.write(`${HOME}${frame.split('\n').join(`${CLEAR_EOL}\r\n`)}${CLEAR_EOL}${CLEAR_BELOW}`);
  }

  /** Gives the terminal back and prints `last` (the final frame) on the normal screen. */
  restore(last = ''): void {
    if (!this.active) return;
    this.restoreSync();
    if (last) this.out.write(`${last}\n`);
  }

  private restoreSync(): void {
    if (!this.active) return;
    this.active = false;
    process.off('exit', this.onExit);
    if (this.input.isTTY) {
      this.input.setRawMode(false);
      this.input.pause();
    }
    // Synchronous: on process.exit no asynchronous write gets out.
    try {
      writeSync((this.out as unknown as { fd: number }).fd ?? 1, `${CURSOR_SHOW}${ALT_OFF}`);
    } catch {
      // The terminal went away (hang-up): nothing to restore.
    }
  }
}
