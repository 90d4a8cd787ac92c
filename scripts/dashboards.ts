// Writes the Grafana dashboards, alert rules and examples generated from dashboards/src.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generatedFiles } from '../dashboards/src/index.ts';

const root = path.resolve(import.meta.dirname, '..');
for (const [rel, text] of Object.entries(generatedFiles())) {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  console.log(`wrote ${rel}`);
}
