/**
 * The CLI shell: declares commands, lazy-imports each command's module, and is the one error
 * boundary — the only place that sets the exit code. (bin.ts is the entry that loads it.)
 */
import { Argument, Command, CommanderError, Option } from 'commander';
import { ExitCode, GateBlockedError, InternalError, InvalidConfigError, IoError, PartialFailureError, isExpectedIoError, isRotorError } from '../errors.js';
import { closeOpenStores } from './open-stores.js';

// Node's and libraries' warnings (the AWS SDK's NodeVersionSupportWarning) in stem-rotor's own log
// format, so stderr stays JSON lines when it is not a terminal.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  const message = `${warning.name}: ${warning.message.replace(/\s+/g, ' ').trim()}`;
  process.stderr.write(process.stderr.isTTY ? `warning: ${message}\n` : `${JSON.stringify({ level: 40, time: new Date().toISOString(), name: 'stem-rotor', msg: message })}\n`);
});

const program = new Command('stem-rotor')
  .description('Signing-key rotation orchestrator for Stem: add-new → activate → drop-old, gated on evidence.')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)');

function json(command: Command): Command {
  return command.option('--json', 'machine-readable output on stdout');
}

/** Options of every command that reads the config. */
function common(command: Command): Command {
  return json(command).option('--config <file>', 'config file (default: $STEM_ROTOR_CONFIG, else ./stem-rotor.yaml, .yml or .json)');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function rotateStep(step: 'start' | 'advance' | 'abort', description: string): Command {
  const command = common(new Command(step).description(description).argument('<ring>').exitOverride())
    .option('--dry-run', 'print the redacted write plan; write nothing')
    .option('--out <file>', 'with --dry-run: save the plan (ids, field changes, gate verdicts, state version, target hashes; no key material)')
    .option('--plan <file>', 'apply exactly this saved plan, or refuse (exit 2) naming what changed since')
    .option('--reason <text>', 'why (recorded in the audit trail)');
  command.option('--override <gate>', 'let a non-passing gate through (repeatable; needs --reason; audited); before a start only `window`', collect, []);
  if (step !== 'start') command.option('--approve', 'record your approval of the next step (as `stem-rotor approve` does)');
  return command.action(async (ring: string, options) => {
    const { rotateCommand } = await import('./commands/rotate.js');
    await rotateCommand(step, ring, options);
  });
}

common(program.command('status').description('phase, keys, targets, gate verdicts and the next action').argument('[ring]')).action(async (ring: string | undefined, options) => {
  const { statusCommand } = await import('./commands/status.js');
  await statusCommand(ring, options);
});

common(program.command('check').description('validate config, reach and lint every target, prove targets agree').argument('[ring]')).action(async (ring: string | undefined, options) => {
  const { checkCommand } = await import('./commands/check.js');
  process.exitCode = await checkCommand(ring, options);
});

const rotate = program.command('rotate').description('drive a rotation by hand');
rotate.addCommand(rotateStep('start', 'add a new key to every target (verifiers first); ACTIVE stays on the old key'));
rotate.addCommand(rotateStep('advance', 'activate the new key, then drop the old one — each only when its gates pass'));
rotate.addCommand(rotateStep('abort', 'remove the new key (from added) or roll ACTIVE back (from activated)'));

common(program.command('revoke').description('emergency: remove a key everywhere, replacing it if active; no gates').argument('<ring>').argument('<keyId>'))
  .option('--reason <text>', 'why (required; audited)')
  .option('--yes', 'confirm: revoke skips every gate')
  .option('--dry-run', 'print the redacted write plan; write nothing')
  .action(async (ring: string, keyId: string, options) => {
    const { revokeCommand } = await import('./commands/revoke.js');
    await revokeCommand(ring, keyId, options);
  });

for (const [decision, description] of [
  ['approve', "record your approval of the ring's next step (its approval gate then passes; audited)"],
  ['deny', 'record a refusal of the rotation and abort it (audited)'],
] as const) {
  common(program.command(decision).description(description).argument('<ring>'))
    .option('--reason <text>', 'why (required; audited)')
    .option('--as <name>', 'who decides, for automation (default: $STEM_ROTOR_ACTOR, else the OS user)')
    .action(async (ring: string, options) => {
      const { approveCommand } = await import('./commands/approve.js');
      await approveCommand(decision, ring, options);
    });
}

common(program.command('adopt').description("bring the keys a fleet already uses under management: read every target, check they agree, record each key's age").argument('<ring>'))
  .option('--created <date>', 'when the keys were created (default: the date in a scheme id, else now)')
  .action(async (ring: string, options) => {
    const { adoptCommand } = await import('./commands/adopt.js');
    await adoptCommand(ring, options);
  });

common(program.command('reconcile').description("show how the targets differ from the ring's state; with --yes --reason, accept the targets as its state (audited)").argument('<ring>'))
  .option('--yes', "accept what the targets hold as the ring's state")
  .option('--reason <text>', 'why (required with --yes; audited)')
  .option('--force', 'also while a rotation is in progress (it ends)')
  .action(async (ring: string, options) => {
    const { reconcileCommand } = await import('./commands/adopt.js');
    process.exitCode = await reconcileCommand(ring, options);
  });

common(program.command('run').description('the scheduled job: start rotations past maxAge, advance those whose gates pass (autoAdvance)'))
  .option('--once', 'one pass over every ring, then exit')
  .option('--interval <duration>', 'repeat every DUR (e.g. 5m); SIGTERM finishes the ring in progress and exits')
  .option('--listen <host:port>', 'with --interval: serve /metrics (Prometheus) and /healthz')
  .option('--metrics-file <path>', "after each pass, write the metrics for node_exporter's textfile collector (atomically; name it *.prom)")
  .option('--pushgateway <url>', 'after each pass, push the metrics to this Prometheus Pushgateway (job "stem-rotor")')
  .action(async (options) => {
    const { runCommand } = await import('./commands/run.js');
    process.exitCode = await runCommand(options);
  });

common(program.command('audit').description('the audit trail').argument('[ring]'))
  .option('--verify', 'walk the hash chain of the whole trail; exit 1 at the first break')
  .action(async (ring: string | undefined, options) => {
    const { auditCommand } = await import('./commands/audit.js');
    process.exitCode = await auditCommand(ring, options);
  });

const configCommand = program.command('config').description('the config file itself');
configCommand
  .command('schema')
  .description("print the config file's JSON Schema (for editors; `init` writes it beside the config)")
  .action(async () => {
    const { configJsonSchema } = await import('../config/json-schema.js');
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

program
  .command('completion')
  .description('print a shell completion script: source <(stem-rotor completion bash)')
  .addArgument(new Argument('<shell>').choices(['bash', 'zsh', 'fish']))
  .action(async (shell: 'bash' | 'zsh' | 'fish') => {
    const { completionScript } = await import('./completion.js');
    process.stdout.write(completionScript(shell, program));
  });

configCommand
  .command('reference')
  .description('print the configuration reference (Markdown): every field, its type, default and meaning')
  .action(async () => {
    const { configReference } = await import('../config/reference.js');
    process.stdout.write(`${configReference()}\n`);
  });

json(program.command('init'))
  .description('write a runnable local example (ring "demo" on dotenv files + file store)')
  .requiredOption('--dir <dir>', 'where to write it')
  .option('--force', 'overwrite existing files')
  .action(async (options) => {
    const { initCommand } = await import('./commands/init.js');
    await initCommand(options);
  });

program
  .command('keys')
  .description('key material')
  .command('generate')
  .option('--json', 'the variables as a JSON object on stdout')
  .description('print STEM_SIGNING_* lines for one fresh key')
  .addOption(new Option('--algorithm <algorithm>', 'signing algorithm').choices(['hmac-sha256', 'ed25519']).default('hmac-sha256'))
  .option('--id <id>', 'key id (default key-<yyyymmdd>-<hex>)')
  .option('--out <file>', 'write to a new file (mode 0600) instead of stdout')
  .action(async (options) => {
    const { keysGenerateCommand } = await import('./commands/keys.js');
    await keysGenerateCommand(options);
  });

const envelope = program.command('envelope').description('sign and verify Stem envelopes byte-compatibly');
// `--file`, not `--env-file`: Node 20 takes --env-file for itself anywhere on its command line.
json(envelope.command('sign').description("sign an envelope (Stem's Envelope.toJson shape) with the env file's active key"))
  .requiredOption('--file <env-file>', 'env file with STEM_SIGNING_* variables')
  .requiredOption('--in <file>', 'envelope JSON file, or - for stdin')
  .action(async (options) => {
    const { envelopeSignCommand } = await import('./commands/envelope.js');
    await envelopeSignCommand(options);
  });
json(envelope.command('verify').description('verify as a Stem worker with that env file would; exit 1 with its failure message'))
  .requiredOption('--file <env-file>', 'env file with STEM_SIGNING_* variables')
  .requiredOption('--in <file>', 'envelope JSON file, or - for stdin')
  .action(async (options) => {
    const { envelopeVerifyCommand } = await import('./commands/envelope.js');
    process.exitCode = await envelopeVerifyCommand(options);
  });

const dlq = program.command('dlq').description("Stem's signature-invalid dead letters");
common(dlq.command('inspect').description('by key id, error class and queue, and which ring key verifies each envelope').argument('<ring>'))
  .option('--since <when>', 'only newer dead letters: a duration (24h) or an ISO time')
  .option('--limit <n>', 'read at most this many dead letters')
  .action(async (ring: string, options) => {
    const { dlqInspectCommand } = await import('./commands/dlq.js');
    await dlqInspectCommand(ring, options);
  });
common(dlq.command('replay').description('re-sign with the active key and re-enqueue the dead letters whose signature verifies under a still-trusted key').argument('<ring>'))
  .option('--resign', 're-sign with the active key (required: unsigned replays fail again)')
  .option('--since <when>', 'only newer dead letters: a duration (24h) or an ISO time')
  .option('--limit <n>', 'read at most this many dead letters')
  .option('--dry-run', 'list what would be replayed; write nothing')
  .option('--yes', 'confirm')
  .action(async (ring: string, options) => {
    const { dlqReplayCommand } = await import('./commands/dlq.js');
    await dlqReplayCommand(ring, options);
  });

const broadcast = program.command('broadcast').description("Stem's broadcast channels");
common(broadcast.command('resign').description('re-sign old-key broadcasts a consumer group still has to receive with the active key; remove the consumed ones').argument('<ring>').argument('<channel>'))
  .option('--dry-run', 'list what would change; write nothing')
  .option('--yes', 'confirm')
  .option('--keep-history', 're-sign consumed broadcasts too, so workers starting under a new consumer name still read them (existing subscribers receive them again)')
  .action(async (ring: string, channel: string, options) => {
    const { broadcastResignCommand } = await import('./commands/broadcast.js');
    await broadcastResignCommand(ring, channel, options);
  });

json(program.command('lint').description('lint the STEM_SIGNING_* variables of an env file').argument('[env-file]'))
  .option('--file <env-file>', 'the env file (or give it as the argument)')
  .addOption(new Option('--dialect <reader>', 'who reads the file').choices(['dotenv', 'docker', 'systemd']).default('dotenv'))
  .action(async (file: string | undefined, options) => {
    const { lintCommand } = await import('./commands/lint.js');
    process.exitCode = await lintCommand(file, options);
  });

function wantsJson(): boolean {
  return process.argv.includes('--json');
}

function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // Help asked for is success; help shown because no command was given is a usage error.
    const bare = process.argv.length <= 2;
    if (!bare && (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help')) return ExitCode.ok;
    return ExitCode.usage;
  }
  if (isRotorError(error)) {
    const details = error instanceof GateBlockedError ? error.reasons : error instanceof PartialFailureError ? error.failures.map((f) => `${f.target}: ${f.error}`) : [];
    if (wantsJson()) {
      const findings = error instanceof InvalidConfigError ? { findings: error.findings } : {};
      process.stdout.write(`${JSON.stringify({ error: error.message, code: error.code, exitCode: error.exitCode, details, ...findings }, null, 2)}\n`);
    }
    process.stderr.write(`stem-rotor: ${error.message}\n`);
    if (error instanceof InternalError) process.stderr.write('this is a bug in stem-rotor; please report it with the audit trail (stem-rotor audit --json)\n');
    return error.exitCode;
  }
  if (isExpectedIoError(error)) {
    // An fs call we did not wrap: still one line naming the operation and the path.
    const io = new IoError(error.syscall ?? 'access', error.path ?? '(unknown path)', error.code);
    if (wantsJson()) process.stdout.write(`${JSON.stringify({ error: io.message, code: io.code, exitCode: io.exitCode, details: [] }, null, 2)}\n`);
    process.stderr.write(`stem-rotor: ${io.message}\n`);
    return io.exitCode;
  }
  process.stderr.write(`stem-rotor: internal error (a bug in stem-rotor, not in your input; please report it with this trace):\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return ExitCode.failure;
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = report(error);
} finally {
  await closeOpenStores();
}
