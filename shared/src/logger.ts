import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;

export function createLogger(opts: { level?: LevelWithSilent; name?: string } = {}): Logger {
  return pino({ level: opts.level ?? process.env.LOG_LEVEL ?? 'info', name: opts.name, base: undefined });
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
