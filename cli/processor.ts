import type { Command } from 'commander';
import { StrataError } from '../lib/errors.ts';

export function registerProcessorCommand(program: Command): void {
  program
    .command('processor')
    .description('(not built yet)')
    .action(() => {
      throw new StrataError('strata processor is not built yet');
    });
}
