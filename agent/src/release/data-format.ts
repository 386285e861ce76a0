/**
 * The data directory's format version. Everything the agent keeps on flash (SQLite files,
 * the device state file, blobs) is one unit with one number in {dataDir}/data-format.json.
 * A newer agent migrates older data forward before opening anything; an agent that finds
 * a newer number refuses to start (DATA_FORMAT_TOO_NEW) rather than read data it does
 * not understand. That refusal is what makes a roll-back after `tu-agent update` safe:
 * see docs/release.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TuError, type Logger } from '@tu/shared';
import { writeFileDurable } from '../fs/durable.js';

export const DATA_FORMAT = 1;
export const DATA_FORMAT_FILE = 'data-format.json';

const StampSchema = z.object({ format: z.number().int().min(0), writtenBy: z.string() });
type Stamp = z.infer<typeof StampSchema>;

export interface DataMigration {
  /** The format this migration produces (from `to - 1`). */
  to: number;
  describe: string;
  run(dataDir: string): Promise<void> | void;
}

/** Ordered migrations; format 0 is a data dir written before formats were recorded. */
export const MIGRATIONS: readonly DataMigration[] = [
  { to: 1, describe: 'record the data format (the files themselves are unchanged)', run: () => undefined },
];

function readStamp(file: string): Stamp | null {
  if (!fs.existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TuError('DATA_FORMAT_INVALID', `${file} is not JSON (${(err as Error).message}); restore it from the agent that wrote the data`);
  }
  const parsed = StampSchema.safeParse(raw);
  if (!parsed.success) throw new TuError('DATA_FORMAT_INVALID', `${file} does not say which data format it holds; restore it from the agent that wrote the data`);
  return parsed.data;
}

/** True when the directory holds anything the agent wrote (an empty dir is a fresh start). */
const hasData = (dataDir: string): boolean => fs.existsSync(dataDir) && fs.readdirSync(dataDir).some((f) => f !== DATA_FORMAT_FILE);

/**
 * Brings dataDir to DATA_FORMAT, or throws DATA_FORMAT_TOO_NEW. Call before any store is
 * opened. Returns the format found (null for a fresh directory).
 */
export async function prepareDataDir(dataDir: string, agentVersion: string, log: Logger, migrations: readonly DataMigration[] = MIGRATIONS, current = DATA_FORMAT): Promise<number | null> {
  const file = path.join(dataDir, DATA_FORMAT_FILE);
  const stamp = readStamp(file);
  const found = stamp ? stamp.format : hasData(dataDir) ? 0 : null;
  if (found !== null && found > current) {
    throw new TuError(
      'DATA_FORMAT_TOO_NEW',
      `${dataDir} holds data format ${found}, written by agent ${stamp?.writtenBy ?? '?'}; this agent (${agentVersion}) reads formats up to ${current}. ` +
        'Refusing to start so the data is not damaged: run the newer agent again (tu-agent update), or move the data directory away to start afresh.',
    );
  }
  if (found === current) return found;
  fs.mkdirSync(dataDir, { recursive: true });
  for (const m of migrations.filter((x) => found !== null && x.to > found && x.to <= current)) {
    log.info({ dataDir, to: m.to }, `migrating data: ${m.describe}`);
    await m.run(dataDir);
    await writeFileDurable(file, JSON.stringify({ format: m.to, writtenBy: agentVersion }) + '\n');
  }
  if (found === null) await writeFileDurable(file, JSON.stringify({ format: current, writtenBy: agentVersion }) + '\n');
  return found;
}
