import fs from 'node:fs/promises';
import type { Adapter } from 'lowdb';
import { writeFileDurable } from '../fs/durable.js';

/**
 * lowdb adapter that survives power loss: lowdb's own JSONFile writes a temp file and
 * renames it, but never fsyncs (DESIGN §5). This one fsyncs the temp file before the
 * rename and the directory after it. Writes are serialised.
 */
export class DurableJSONFile<T> implements Adapter<T> {
  #chain: Promise<void> = Promise.resolve();
  constructor(readonly file: string) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return JSON.parse(text) as T;
  }

  write(data: T): Promise<void> {
    const text = JSON.stringify(data, null, 2);
    const next = this.#chain.then(() => writeFileDurable(this.file, text));
    this.#chain = next.catch(() => undefined);
    return next;
  }
}
