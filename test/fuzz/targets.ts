// Every fuzz target, for both runners (test/unit/fuzz.test.ts and test/fuzz/run.ts).

import { targets as cgroup } from './cgroup.fuzz.ts';
import { targets as config } from './config.fuzz.ts';
import { targets as guestFraming } from './guest-framing.fuzz.ts';
import type { FuzzTarget } from './harness.ts';
import { targets as hostParsers } from './host-parsers.fuzz.ts';
import { targets as lineProtocol } from './line-protocol.fuzz.ts';
import { targets as sample } from './sample.fuzz.ts';
import { targets as vm } from './vm.fuzz.ts';

export const allTargets: FuzzTarget[] = [
  ...hostParsers,
  ...cgroup,
  ...vm,
  ...guestFraming,
  ...sample,
  ...config,
  ...lineProtocol,
];
