/**
 * stem-rotor's own logs: structured JSON on stderr (pino), plain text when stderr is a terminal.
 * Loaded only by commands that do work worth logging, so `status` stays fast.
 */
export interface Log {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export async function createLog(): Promise<Log> {
  if (process.stderr.isTTY) {
    return {
      info: (message) => process.stderr.write(`${message}\n`),
      warn: (message) => process.stderr.write(`warning: ${message}\n`),
    };
  }
  const { default: pino } = await import('pino');
  const logger = pino({ base: { name: 'stem-rotor' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
  };
}
