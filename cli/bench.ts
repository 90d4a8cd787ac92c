import type { Command } from 'commander';
import { StrataError } from '../lib/errors.ts';

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('(not built yet)')
    .action(() => {
      throw new StrataError('strata bench is not built yet');
    });
}
