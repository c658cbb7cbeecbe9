import { ConfigError } from '../../errors.js';
import { envelopeSchema, envelopeToJson, type Envelope } from '../../stem/envelope.js';
import { formatIssues } from '../../config/load.js';
import { parseStemJson, stringifyStemJson } from '../../stem/json.js';
import { signEnvelope, verifyEnvelope } from '../../stem/signer.js';
import { StemConfigError, loadStemSigningConfig, type StemSigningConfig } from '../../stem/signing-env.js';
import { print, type CommonOptions } from '../context.js';
import { readEnvFile, readInput } from '../env-file.js';

interface EnvelopeOptions extends CommonOptions {
  /** The env file with STEM_SIGNING_* variables. */
  readonly file: string;
  readonly in: string;
}

function load(options: EnvelopeOptions): { config: StemSigningConfig; envelope: Envelope } {
  let config: StemSigningConfig;
  try {
    config = loadStemSigningConfig(readEnvFile(options.file));
  } catch (error) {
    if (error instanceof StemConfigError) throw new ConfigError(`--file ${options.file}: Stem would refuse this config: ${error.message}`);
    throw error;
  }
  let document: unknown;
  try {
    document = parseStemJson(readInput(options.in));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`--in ${options.in}: not JSON: ${(error as Error).message}`);
  }
  const parsed = envelopeSchema.safeParse(document);
  if (!parsed.success) throw new ConfigError(`--in ${options.in}: not a Stem envelope:\n  ${formatIssues(parsed.error.issues).join('\n  ')}`);
  return { config, envelope: parsed.data };
}

export async function envelopeSignCommand(options: EnvelopeOptions): Promise<void> {
  const { config, envelope } = load(options);
  let signed: Envelope;
  try {
    signed = signEnvelope(envelope, config);
  } catch (error) {
    throw new ConfigError(`--file ${options.file}: ${(error as Error).message}`);
  }
  process.stdout.write(`${stringifyStemJson(envelopeToJson(signed), options.json ? 2 : undefined)}\n`);
}

/** Exit 0 when Stem would accept the envelope, 1 with Stem's failure message otherwise. */
export async function envelopeVerifyCommand(options: EnvelopeOptions): Promise<number> {
  const { config, envelope } = load(options);
  const result = verifyEnvelope(envelope, config);
  print(options, result, () => (result.ok ? (result.skipped ? 'valid (signing is disabled in this config: Stem accepts everything)' : `valid (key "${result.keyId}")`) : result.message));
  return result.ok ? 0 : 1;
}
