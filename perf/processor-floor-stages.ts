/** The stages perf/processor-floor.ts can stop after, in pipeline order (see that file). */
export const FLOOR_STAGES = ['kafka', 'parse', 'decode', 'pipeline', 'encode'] as const;
export type FloorStage = (typeof FLOOR_STAGES)[number];
