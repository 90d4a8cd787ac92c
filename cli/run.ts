import type { Command } from 'commander';
import { StrataError } from '../lib/errors.ts';

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('(not built yet)')
    .action(() => {
      throw new StrataError('strata run is not built yet');
    });
}
