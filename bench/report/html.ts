// A self-contained HTML report: Chart.js and its error-bars plugin (chartjs-chart-error-bars) are
// inlined from node_modules as minified UMD bundles, so the file opens offline. One card per workload
// case: throughput and host CPU per operation, layers side by side, bars at the median with min–max
// error bars; then the summary table and what each layer was.
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { type BenchResult, fmt } from '../runner.ts';

const require = createRequire(import.meta.url);

const LAYER_COLORS: Record<string, string> = {
  native: '#4e79a7',
  container: '#59a14f',
  'container-nat': '#edc948',
  'container-volume': '#76b7b2',
  'container-nat-volume': '#f28e2b',
  vm: '#e15759',
};

/** A file beside a package's main entry (the packages' "exports" hide their UMD builds from resolve). */
async function inlineScript(pkg: string, file: string): Promise<string> {
  const text = await fs.readFile(path.join(path.dirname(require.resolve(pkg)), file), 'utf8');
  // A literal "</script" inside the bundle would end the element early.
  return text.replace(/<\/script/gi, '<\\/script').replace(/\/\/# sourceMappingURL=.*$/m, '');
}

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);

export async function renderHtml(result: BenchResult): Promise<string> {
  const [chartJs, errorBars] = await Promise.all([
    inlineScript('chart.js', 'chart.umd.min.js'),
    inlineScript('chartjs-chart-error-bars', 'index.umd.min.js'),
  ]);
  const cases = [...new Set(result.summaries.map((s) => s.case))].map((id) => {
    const rows = result.summaries.filter((s) => s.case === id && s.throughput);
    const first = result.summaries.find((s) => s.case === id)!;
    return {
      id,
      description: first.description,
      throughputUnit: rows[0]?.throughput_unit ?? '',
      opUnit: rows[0]?.op_unit ?? 'op',
      layers: rows.map((s) => ({
        layer: s.layer,
        color: LAYER_COLORS[s.layer] ?? '#999',
        throughput: s.throughput!,
        cpu: s.cpu_per_op_us ?? null,
        overhead: s.throughput_overhead_pct ?? null,
        cpuOverhead: s.cpu_overhead_pct ?? null,
      })),
    };
  });
  const data = JSON.stringify({ cases }).replace(/</g, '\\u003c');
  const pct = (v: number | undefined) => (v === undefined ? '' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);
  const tableRows = result.summaries
    .map(
      (s) => `<tr><td>${esc(s.case)}</td><td>${esc(s.layer)}</td>
<td class="n">${s.throughput ? `${fmt(s.throughput.median)} <small>[${fmt(s.throughput.min)}–${fmt(s.throughput.max)}]</small> ${esc(s.throughput_unit ?? '')}` : 'failed'}</td>
<td class="n">${s.latency_p50 ? `${fmt(s.latency_p50.median)} ${esc(s.latency_unit ?? '')}` : ''}</td>
<td class="n">${s.latency_p99 ? `${fmt(s.latency_p99.median)} ${esc(s.latency_unit ?? '')}` : ''}</td>
<td class="n">${s.cpu_per_op_us ? `${fmt(s.cpu_per_op_us.median)} µs/${esc(s.op_unit ?? 'op')}` : ''}</td>
<td class="n">${s.layer === 'native' ? 'baseline' : pct(s.throughput_overhead_pct)}</td>
<td class="n">${s.layer === 'native' ? 'baseline' : pct(s.cpu_overhead_pct)}</td>
<td class="n">${s.runs - s.failed}/${s.runs}</td></tr>`,
    )
    .join('\n');
  const notes = [
    ...result.layers
      .filter((l) => l.status !== 'skipped')
      .map((l) =>
        l.status === 'ok'
          ? `<li><b>${esc(l.layer)}</b>: ${esc(
              Object.entries(l.info)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ') || 'host processes',
            )}</li>`
          : `<li><b>${esc(l.layer)}</b> did not run: ${esc(l.reason ?? '')}</li>`,
      ),
    ...result.skipped.map((s) => `<li>${esc(s.case)} @ ${esc(s.layer)} skipped: ${esc(s.reason)}</li>`),
    ...result.runs
      .filter((r) => !r.ok)
      .map((r) => `<li>${esc(r.case)} @ ${esc(r.layer)} run ${r.repeat} failed: ${esc(r.error ?? '')}</li>`),
  ].join('\n');
  const h = result.host;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>strata bench ${esc(result.run_id)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} .sub{color:#666;margin-bottom:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px}
.card h2{font-size:15px;margin:0} .card p{margin:2px 0 8px;color:#666;font-size:12px}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:8px} .charts div{height:240px;position:relative;min-width:0}
table{border-collapse:collapse;margin-top:20px;background:#fff} td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px}
th{background:#f0f0f0;text-align:left} td.n{text-align:right;font-variant-numeric:tabular-nums}
ul{font-size:13px;color:#444}
</style></head><body>
<h1>strata bench — run ${esc(result.run_id)}</h1>
<div class="sub">${esc(h.hostname)}: ${h.cpus} × ${esc(h.cpu_model)}, ${h.memory_mb} MiB, Linux ${esc(h.kernel)} ·
${result.config.repeats} repeat(s) × ${result.config.durationMs / 1000} s ·
${result.config.concurrent ? 'layers concurrently' : 'layers one after another'} · ${esc(result.started_at)}.
Bars: median; error bars: min–max over the repeats.</div>
<div class="grid" id="cards"></div>
<table><thead><tr><th>workload</th><th>layer</th><th>throughput (median [min–max])</th><th>latency p50</th><th>latency p99</th>
<th>host CPU per op</th><th>Δ throughput vs native</th><th>Δ CPU/op vs native</th><th>runs ok</th></tr></thead>
<tbody>${tableRows}</tbody></table>
<ul>${notes}</ul>
<p style="font-size:12px;color:#666">Δ throughput = (native − layer) ÷ native (positive: slower). Δ CPU/op = (layer − native) ÷ native (positive: costlier). Formulas and sources: docs/bench.md.</p>
<script type="application/json" id="bench-data">${data}</script>
<script>${chartJs}</script>
<script>${errorBars}</script>
<script>
(function(){
  var EB = window.ChartErrorBars;
  Chart.register(EB.BarWithErrorBarsController, EB.BarWithErrorBar);
  var data = JSON.parse(document.getElementById('bench-data').textContent);
  var cards = document.getElementById('cards');
  data.cases.forEach(function(c){
    var card = document.createElement('div'); card.className = 'card';
    card.innerHTML = '<h2></h2><p></p><div class="charts"><div><canvas></canvas></div><div><canvas></canvas></div></div>';
    card.querySelector('h2').textContent = c.id;
    card.querySelector('p').textContent = c.description;
    cards.appendChild(card);
    var canvases = card.querySelectorAll('canvas');
    function pct(v){ return v === null ? '' : ' (' + (v >= 0 ? '+' : '') + v.toFixed(1) + '%)'; }
    function chart(canvas, title, pick, delta){
      var rows = c.layers.filter(function(l){ return pick(l); });
      new Chart(canvas, {
        type: 'barWithErrorBars',
        data: { labels: rows.map(function(l){ return l.layer + (l.layer === 'native' ? '' : pct(delta(l))); }),
          datasets: [{ label: title, backgroundColor: rows.map(function(l){ return l.color; }),
            data: rows.map(function(l){ var s = pick(l); return { y: s.median, yMin: s.min, yMax: s.max }; }) }] },
        options: { animation: false, responsive: true, maintainAspectRatio: false,
          plugins: { legend: { display: false }, title: { display: true, text: title } },
          scales: { y: { beginAtZero: true } } }
      });
    }
    // Labels carry the overhead vs native as in the table: throughput (positive = slower), CPU per op (positive = costlier).
    chart(canvases[0], 'throughput (' + c.throughputUnit + ')', function(l){ return l.throughput; },
      function(l){ return l.overhead; });
    chart(canvases[1], 'host CPU per ' + c.opUnit + ' (µs)', function(l){ return l.cpu; },
      function(l){ return l.cpuOverhead; });
  });
  document.body.setAttribute('data-rendered', String(data.cases.length));
})();
</script>
</body></html>
`;
}
