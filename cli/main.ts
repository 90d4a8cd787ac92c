// `strata` entry point. Each subcommand lives in its own module and is imported lazily, so
// `strata agent` does not load the InfluxDB client and `strata --help` starts fast.
import { Command, CommanderError } from 'commander';
import { ConfigError, MissingPrerequisiteError, StrataError } from '../lib/errors.ts';
import { redactUrls } from '../lib/redact.ts';
import { registerAgentCommand } from './agent.ts';
import { registerBenchCommand } from './bench.ts';
import { examples, oneLineUsageError } from './flags.ts';
import { registerProcessorCommand } from './processor.ts';
import { registerRunCommand } from './run.ts';
import { registerStackCommand } from './stack.ts';
import { VERSION } from './version.ts';

// `strata agent --once --output ndjson | head -c 100`, `strata --help | head`: a reader that
// goes away is normal for a CLI, not a crash.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('strata')
  .description(
    'strata measures what each layer of virtualization costs, continuously:\n' +
      'agents sample host, containers, VMs and guests -> Kafka -> processors -> InfluxDB.',
  )
  .version(VERSION)
  // A usage error is one line naming the flag and what is accepted (cli/flags.ts), exit 2.
  .configureOutput({ outputError: (text, write) => write(oneLineUsageError(text)) })
  .exitOverride();

examples(program, [
  ['npm start', 'live per-layer view of this machine (strata run)'],
  ['eval "$(strata stack up)"', 'local Kafka, InfluxDB and Docker engine for the pipeline'],
  ['strata agent --once --output ndjson', 'one tick of this node as JSON'],
  ['strata <command> --help', 'flags, env vars and defaults of a command'],
]);

registerRunCommand(program);
registerAgentCommand(program);
registerProcessorCommand(program);
registerBenchCommand(program);
registerStackCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version also arrive here, with exit code 0; usage errors exit 2, like
    // ConfigError (a bad flag value is one too).
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof ConfigError || err instanceof MissingPrerequisiteError) {
    process.stderr.write(`strata: ${redactUrls(err.message)}\n`);
    process.exitCode = 2;
  } else if (err instanceof StrataError) {
    process.stderr.write(`strata: ${redactUrls(err.message)}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`strata: unexpected error: ${redactUrls(String((err as Error)?.stack ?? err))}\n`);
    process.exitCode = 1;
  }
}
