/**
 * The relay's commands and the options each takes: what `args.ts` parses against (anything else
 * is a usage error naming it) and what `--help` prints. A command's options are its own: a
 * typo of one (`--tenat`) is refused, never read as a filter left out.
 */
export interface OptionSpec {
  type: 'string' | 'boolean';
  required?: boolean;
}

export interface CommandSpec {
  /** Positional arguments after the two command words (`<id>`), all required. */
  args: readonly string[];
  options: Readonly<Record<string, OptionSpec>>;
  /** How it is called, and what it does (the usage text). */
  synopsis: string;
  about: string;
  /** Only reads storage: a database that is not there is an error, not created (storage/open.ts). */
  readsOnly?: boolean;
}

/** Taken by every command, the relay start included. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = { config: { type: 'string' }, help: { type: 'boolean' } };

const str = { type: 'string' } as const;
const req = { type: 'string', required: true } as const;
const flag = { type: 'boolean' } as const;

export const COMMANDS = {
  '': { args: [], options: {}, synopsis: '(no command)', about: 'start the relay' },
  'tenants add': { args: ['id'], options: { name: str }, synopsis: 'tenants add <id> [--name N]', about: 'register a tenant' },
  'tenants list': { args: [], options: {}, synopsis: 'tenants list', about: 'id, name, created', readsOnly: true },
  'gateways add': {
    args: ['id'],
    options: { tenant: req, name: str, 'print-hash': flag },
    synopsis: 'gateways add <id> --tenant <t> [--name N] [--print-hash]',
    about: 'register a gateway; prints its generated secret ONCE (--print-hash: and its scrypt hash, for a registryFile entry)',
  },
  'gateways list': {
    args: [],
    options: { tenant: str },
    synopsis: 'gateways list [--tenant T]',
    about: 'id, tenant, name, online|offline (as the dashboard shows it; unknown when redis does not answer), last seen, active|revoked',
    readsOnly: true,
  },
  'gateways revoke': {
    args: ['id'],
    options: {},
    synopsis: 'gateways revoke <id>',
    about: 'refuse the gateway from now on (RabbitMQ ingress: its next connection within ingress.rabbitmq.cacheTtlMs; with .management, its open connections closed at once)',
  },
  'gateways rotate': {
    args: ['id'],
    options: { 'print-hash': flag },
    synopsis: 'gateways rotate <id> [--print-hash]',
    about: 'give an active gateway a new secret, printed ONCE; the old one is refused from now on, as after revoke',
  },
  'gateways restore': {
    args: ['id'],
    options: { 'print-hash': flag },
    synopsis: 'gateways restore <id> [--print-hash]',
    about: 'let a revoked gateway in again with a new secret, printed ONCE (its old secret stays refused)',
  },
  'rabbitmq config': {
    args: [],
    options: { 'relay-url': req },
    synopsis: 'rabbitmq config --relay-url URL',
    about: 'print the enabled_plugins and rabbitmq.conf lines a RabbitMQ cluster needs (URL: this relay, or a load balancer before all instances, as the broker reaches it)',
  },
  'tokens issue': {
    args: [],
    options: { tenant: req, sub: str, ttl: str },
    synopsis: 'tokens issue --tenant <t> [--sub S] [--ttl 30d]',
    about: 'print a dashboard JWT (HS256 with jwt.secret, dev) for a registered tenant; --ttl at most 90d',
    readsOnly: true,
  },
  'technicians key': {
    args: [],
    options: {},
    synopsis: 'technicians key',
    about: 'print the public key gateways verify technician tokens with (provision it: tu-agent provision ... --technician-key FILE)',
  },
  'technicians token': {
    args: [],
    options: { gateway: req, role: req, name: req, ttl: str },
    synopsis: 'technicians token --gateway <g> --role <view,upload,register,teach> --name <who> [--ttl 8h]',
    about: 'print a short-lived technician token for one active gateway (at most 7d)',
    readsOnly: true,
  },
  'examples export': {
    args: [],
    options: { tenant: req, gateway: str, out: str },
    synopsis: 'examples export --tenant <t> [--gateway G] [--out FILE]',
    about: "technicians' labelled examples as JSON lines (stdout or FILE)",
    readsOnly: true,
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export const isCommand = (name: string): name is CommandName => Object.hasOwn(COMMANDS, name);

const COL = 49;
/** `about` wrapped at about 120 columns, its lines indented to the column. */
function wrap(text: string): string[] {
  const lines: string[] = [''];
  for (const word of text.split(' ')) {
    const cur = lines[lines.length - 1]!;
    if (cur !== '' && COL + cur.length + 1 + word.length > 120) lines.push(word);
    else lines[lines.length - 1] = cur === '' ? word : `${cur} ${word}`;
  }
  return lines;
}
function line(c: CommandSpec): string {
  const [first, ...rest] = wrap(c.about);
  const head = `  ${c.synopsis}`;
  const lines = head.length < COL ? [`${head.padEnd(COL)}${first}`] : [head, `${' '.repeat(COL)}${first}`];
  return [...lines, ...rest.map((r) => `${' '.repeat(COL)}${r}`)].join('\n');
}

export const USAGE = ['usage: npm run relay -- [--config FILE] [command]', ...Object.values(COMMANDS).map(line)].join('\n');

/** The usage line of one command, for its usage errors. */
export const usageOf = (name: CommandName): string => `usage: npm run relay -- ${name === '' ? '[--config FILE]' : COMMANDS[name].synopsis}`;
