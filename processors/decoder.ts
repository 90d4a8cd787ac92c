// The processor's sample decoder: schemas/sample.ts SampleDecoder with the `processor.samples`
// bounds, the time window on this process's clock, and what the soft bounds cut counted in
// /metrics (strata_processor_samples_cut_total{what}) and logged once per node.
import { componentLogger, OnceLogger } from '../lib/log.ts';
import { counter } from '../lib/metrics.ts';
import { type CutKind, SampleDecoder } from '../schemas/sample.ts';

const cutTotal = counter(
  'strata_processor_samples_cut_total',
  'Parts of accepted messages cut by a soft bound of processor.samples: instances (devices or interfaces beyond maxInstancesPerEntity, or named longer than maxValueLength), label_values (cut to maxValueLength).',
  ['what'],
);

const log = componentLogger('processor.decode');
const once = new OnceLogger(log);

const BOUND: Record<CutKind, string> = {
  instances: 'samples.maxInstancesPerEntity (or a device/interface name longer than samples.maxValueLength)',
  label_values: 'samples.maxValueLength',
};

export interface SampleBounds {
  maxAge: number;
  maxFuture: number;
  maxSamplesPerMessage: number;
  maxInstancesPerEntity: number;
  maxNameLength: number;
  maxValueLength: number;
}

/** A decoder for live consumption: `now` is this processor's clock (Date.now unless a test sets it). */
export function createSampleDecoder(bounds: SampleBounds, now: () => number = Date.now): SampleDecoder {
  const { maxAge, maxFuture, ...limits } = bounds;
  return new SampleDecoder(limits, {
    window: { now, maxAgeMs: maxAge, maxFutureMs: maxFuture },
    onCut: (what, n, message) => {
      cutTotal.inc({ what }, n);
      once.warn(
        `cut:${what}:${message.node.id}`,
        { node: message.node.id, what, cut: n },
        `message accepted with parts cut by ${BOUND[what]}`,
      );
    },
  });
}
