import type { Command } from 'commander';
import { StrataError } from '../lib/errors.ts';

export function registerStackCommand(program: Command): void {
  program
    .command('stack')
    .description('(not built yet)')
    .action(() => {
      throw new StrataError('strata stack is not built yet');
    });
}
