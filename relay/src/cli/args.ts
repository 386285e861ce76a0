import { parseArgs as parseNodeArgs, type ParseArgsConfig } from 'node:util';
import { TuError } from '@tu/shared';
import { COMMANDS, GLOBAL_OPTIONS, isCommand, USAGE, usageOf, type CommandName, type OptionSpec } from './usage.js';

export interface ParsedArgs {
  command: CommandName;
  /** The command words and its arguments (`gateways`, `revoke`, `gw-1`). */
  positional: string[];
  /** Options given, by name without `--`; a boolean one is present (`'true'`) or absent. */
  flags: Map<string, string>;
}

type NodeOptions = NonNullable<ParseArgsConfig['options']>;
const toNode = (o: Readonly<Record<string, OptionSpec>>): NodeOptions => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, { type: v.type }]));
const optionsOf = (command: CommandName): Readonly<Record<string, OptionSpec>> => ({ ...COMMANDS[command].options, ...GLOBAL_OPTIONS });

// Every option of every command (one name has one type throughout): the first, lenient pass
// consumes `--config FILE` and the like, so the command words are found wherever options stand.
const ALL_OPTIONS: Record<string, OptionSpec> = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(COMMANDS).map((c) => c.options));

const usageError = (command: CommandName, message: string): TuError => new TuError('INVALID_REQUEST', `${message}\n${usageOf(command)}`);

/** The command named by the first positional words ('' = start the relay). */
function commandOf(positional: readonly string[]): CommandName {
  if (positional.length === 0) return '';
  const name = positional.slice(0, 2).join(' ');
  if (!isCommand(name) || name === '') throw new TuError('INVALID_REQUEST', `unknown command \`${name}\`\n${USAGE}`);
  return name;
}

/**
 * `node relay/dist/main.js [--config FILE] <noun> <verb> [args] [--options]`, strictly against the
 * command's own options (node:util parseArgs): an unknown option, an option without its value,
 * one given twice, a missing required one or argument is a usage error (INVALID_REQUEST, exit 2)
 * naming it. A value starting with `-` is written `--ttl=-5d` (else ambiguous, and refused).
 */
export function parseArgs(argv: string[]): ParsedArgs {
  const loose = parseNodeArgs({ args: argv, options: toNode(ALL_OPTIONS), strict: false, allowPositionals: true });
  const command = commandOf(loose.positionals);
  const allowed = optionsOf(command);
  let parsed;
  try {
    parsed = parseNodeArgs({ args: argv, options: toNode(allowed), strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'([^']+)'/.exec(e.message)?.[1] : undefined;
    throw usageError(command, unknown ? `unknown option ${unknown} for ${describe(command)}; it takes ${takes(command)}` : `${describe(command)}: ${e.message}`);
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw usageError(command, `--${t.name} is given more than once`);
    seen.add(t.name);
  }
  const flags = new Map<string, string>();
  for (const [k, v] of Object.entries(parsed.values)) if (v !== undefined && v !== false) flags.set(k, v === true ? 'true' : String(v));
  checkCommand(parsed.positionals, flags);
  return { command, positional: parsed.positionals, flags };
}

/**
 * The command of `positional`, after checking its arguments and `flags` against its declaration
 * (also for callers that build `flags` themselves, as the tests do). `--help` skips the required ones.
 */
export function checkCommand(positional: readonly string[], flags: ReadonlyMap<string, string>): CommandName {
  const command = commandOf(positional);
  const spec = COMMANDS[command];
  const allowed = optionsOf(command);
  for (const k of flags.keys()) if (!Object.hasOwn(allowed, k)) throw usageError(command, `unknown option --${k} for ${describe(command)}; it takes ${takes(command)}`);
  for (const [k, o] of Object.entries(allowed)) if (o.type === 'string' && flags.get(k)?.trim() === '') throw usageError(command, `--${k} needs a value`);
  if (flags.has('help')) return command;
  const words = command === '' ? 0 : 2;
  const args = positional.slice(words);
  if (args.length < spec.args.length) throw usageError(command, `${describe(command)} needs <${spec.args[args.length]}>`);
  if (args.length > spec.args.length) throw usageError(command, `unexpected argument \`${args[spec.args.length]}\` for ${describe(command)}`);
  for (const [k, o] of Object.entries(allowed)) if (o.required && !flags.has(k)) throw usageError(command, `--${k} is required for ${describe(command)}`);
  return command;
}

const describe = (command: CommandName): string => (command === '' ? 'the relay start' : `\`${command}\``);
const takes = (command: CommandName): string =>
  Object.entries(optionsOf(command))
    .map(([k, o]) => `--${k}${o.type === 'string' ? ' <value>' : ''}`)
    .join(', ');
