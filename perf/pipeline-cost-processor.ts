// `strata processor` with a perf:pipeline-cost variant applied to the points of every message
// (perf/pipeline-cost-variants.ts): the same config resolution (env vars, as the CLI reads them
// with no flags), the same runtime and sink; only the pipeline is wrapped, so that what reaches
// InfluxDB is variant(points). The `today` variant runs the real `strata processor` command
// instead, unless perf:pipeline-cost is given --processor wrapper.
//   node --import tsx perf/pipeline-cost-processor.ts --variant zero-rates-skip
import { parseArgs } from 'node:util';
import { createProcessor, resolveProcessorConfig } from '../processor/index.ts';
import { createPipeline } from '../processors/pipeline.ts';
import type { Pipeline } from '../processors/types.ts';
import { variantNamed } from './pipeline-cost-variants.ts';

const { values } = parseArgs({ options: { variant: { type: 'string', default: 'today' } } });
const variant = variantNamed(values.variant as string);
const config = resolveProcessorConfig({});
const wrapped = (): Pipeline => {
  const p = createPipeline({ ...(config.pipeline as object), ...variant.pipeline });
  const apply = variant.apply;
  const handle = p.handle.bind(p);
  p.handle = (m) => {
    const out = handle(m);
    return { points: apply(out.points), alerts: out.alerts };
  };
  return p;
};
const processor = createProcessor(config, { createPipeline: wrapped });
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void processor.stop().finally(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
await processor.start();
await new Promise<void>(() => {});
