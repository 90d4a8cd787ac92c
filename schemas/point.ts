// What processors hand to sinks: one InfluxDB point. Timestamps are the sample's (ms), never the
// wall clock at write time, so replaying a partition rewrites identical points.
export interface Point {
  measurement: string;
  /** Bounded-cardinality identifiers only (node, layer, entity name, device...). Ids that churn are fields. */
  tags: Record<string, string>;
  fields: Record<string, number | string | boolean>;
  /** ms since epoch. */
  timeMs: number;
}
