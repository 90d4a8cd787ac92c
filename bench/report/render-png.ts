// Renders a bench run's HTML report to a PNG, as a reader's browser shows it: the report is drawn by
// Chart.js on canvases, so only a browser engine renders it faithfully. Uses Debian's headless
// Chromium (`apt-get install chromium-headless-shell`, or `chromium`); nothing is downloaded.
//   node --import tsx bench/report/render-png.ts <out dir of a run | bench.json> <out.png> [width px]
// docs/bench-report.png was made this way from the run docs/bench.md describes.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { MissingPrerequisiteError } from '../../lib/errors.ts';
import { which } from '../layers/common.ts';
import type { BenchResult } from '../runner.ts';
import { renderHtml } from './html.ts';

const execFileP = promisify(execFile);

export async function renderReportPng(result: BenchResult, outPng: string, width = 1200): Promise<void> {
  const browser = (await which('chromium-headless-shell')) ?? (await which('chromium'));
  if (!browser) {
    throw new MissingPrerequisiteError(
      'no headless Chromium; install it with: apt-get install --no-install-recommends chromium-headless-shell',
    );
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-report-'));
  try {
    const html = path.join(dir, 'report.html');
    // Charts animate in; the screenshot is taken when the page's load settles, so turn animation
    // off. The page's height is recorded on <body> so that a first pass can size the window.
    const page = (await renderHtml(result)).replace(
      '</head>',
      '<script>window.addEventListener("DOMContentLoaded",()=>{if(window.Chart)Chart.defaults.animation=false;});' +
        'window.addEventListener("load",()=>{document.body.dataset.height=document.documentElement.scrollHeight;});</script></head>',
    );
    await fs.writeFile(html, page);
    const common = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      '--virtual-time-budget=5000',
    ];
    const url = pathToFileURL(html).href;
    // The screenshot is cut at the window's height: measure the page at this width first.
    const dom = await execFileP(browser, [...common, `--window-size=${width},1000`, '--dump-dom', url], {
      timeout: 120_000,
      maxBuffer: 64 << 20,
    });
    const height = Number(/data-height="(\d+)"/.exec(dom.stdout)?.[1] ?? 3000);
    await execFileP(
      browser,
      [...common, `--window-size=${width},${height}`, `--screenshot=${path.resolve(outPng)}`, url],
      { timeout: 120_000, maxBuffer: 16 << 20 },
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [src, out, width] = process.argv.slice(2);
  if (!src || !out) {
    process.stderr.write('usage: render-png.ts <bench out dir | bench.json> <out.png> [width]\n');
    process.exit(2);
  }
  const file = (await fs.stat(src)).isDirectory() ? path.join(src, 'bench.json') : src;
  const result = JSON.parse(await fs.readFile(file, 'utf8')) as BenchResult;
  await renderReportPng(result, out, width ? Number(width) : undefined);
  process.stderr.write(`wrote ${out}\n`);
}
