import type { Command } from 'commander';
import { StrataError } from '../lib/errors.ts';

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('(not built yet)')
    .action(() => {
      throw new StrataError('strata agent is not built yet');
    });
}
