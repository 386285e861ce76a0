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
