/**
 * The options of `tu-agent` and which command takes which. An option a command does not use
 * is a usage error (exit 2), never silently ignored: `token --root DIR` used to sign with the
 * key of the config's data dir while the operator believed the root applied.
 */
import { parseArgs } from 'node:util';

/** A mistake in the command line: printed with the usage, exit 2. */
export class UsageError extends Error {}

export const OPTIONS = {
  config: { type: 'string' },
  profile: { type: 'string' },
  service: { type: 'string' },
  root: { type: 'string' },
  'no-system': { type: 'boolean' },
  purge: { type: 'boolean' },
  'gateway-id': { type: 'string' },
  relay: { type: 'string' },
  'secret-file': { type: 'string' },
  ca: { type: 'string' },
  'technician-key': { type: 'string' },
  role: { type: 'string' },
  name: { type: 'string' },
  ttl: { type: 'string' },
  'restart-command': { type: 'string' },
  'timeout-s': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

const CONFIG_CHOICE: OptionName[] = ['config', 'profile'];

/** What each command reads; `--help` goes with every one. */
export const COMMAND_OPTIONS: Record<string, readonly OptionName[]> = {
  run: [...CONFIG_CHOICE, 'service'],
  version: CONFIG_CHOICE,
  status: CONFIG_CHOICE,
  config: [],
  credentials: CONFIG_CHOICE,
  token: [...CONFIG_CHOICE, 'role', 'name', 'ttl'],
  logs: [],
  stack: [],
  install: ['root', 'no-system'],
  uninstall: ['root', 'no-system', 'purge'],
  provision: ['root', 'gateway-id', 'relay', 'secret-file', 'ca', 'technician-key'],
  update: ['root', 'timeout-s', 'restart-command'],
  rollback: ['root', 'timeout-s', 'restart-command'],
  recover: ['root'],
};

/**
 * How many words a command takes after its name; more is a usage error. Ignored, they hid
 * mistakes: `tu-agent run vision` (meant: `run --service vision`) started a whole second agent.
 * `config` and `update` check their own words (main.ts).
 */
export const COMMAND_WORDS: Record<string, number> = {
  run: 0,
  version: 0,
  status: 0,
  config: 2,
  credentials: 1,
  token: 0,
  logs: 0,
  stack: 1,
  install: 0,
  uninstall: 0,
  provision: 0,
  update: 1,
  rollback: 0,
  recover: 0,
};

export function parseCommandLine(args: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: OPTIONS, tokens: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [command = 'run', ...rest] = parsed.positionals;
  const result = { command, rest, values: parsed.values };
  if (parsed.values.help) return result;
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) throw new UsageError(`unknown command ${command}`);
  const words = COMMAND_WORDS[command] ?? 0;
  if (rest.length > words) {
    throw new UsageError(`tu-agent ${command} takes ${words === 0 ? 'no words' : `at most ${words} word(s)`} after it; unexpected: ${rest.slice(words).join(' ')}${command === 'run' ? ' (one service: run --service NAME)' : ''}`);
  }
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    if (t.name !== 'help' && !allowed.includes(t.name as OptionName)) {
      const takes = allowed.length ? `it takes ${allowed.map((o) => `--${o}`).join(', ')}` : 'it takes no options';
      throw new UsageError(`tu-agent ${command} does not use ${t.rawName}; ${takes}`);
    }
    // `--role "$ROLES"` with the variable unset: a mistake, never the same as leaving the option out.
    if (t.value !== undefined && !t.value.trim()) throw new UsageError(`${t.rawName} is empty: give it a value, or leave it out`);
  }
  return result;
}

/**
 * A whole number of at least 1 (and at most `max`), for options such as --timeout-s: `abc`
 * would be NaN and `0` no time at all, and either would make every update roll back at once.
 */
export function positiveInteger(option: string, text: string | undefined, dflt: number, max: number): number {
  if (text === undefined) return dflt;
  if (!/^[1-9]\d*$/.test(text) || Number(text) > max) throw new UsageError(`--${option} ${JSON.stringify(text)}: a whole number from 1 to ${max}`);
  return Number(text);
}
