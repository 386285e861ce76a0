/**
 * `tu-agent stack [FILE]`: rewrites stack-trace frames that point into the release bundle
 * (`…/lib/<name>.js:LINE:COL`) to the source file and line they came from, using the
 * source maps shipped beside the bundle. Reads FILE or standard input, writes the text back
 * with only the frames changed, so `journalctl -u tu-agent -o cat | tu-agent stack` keeps
 * the JSON log lines intact.
 *
 * Why offline and not in the agent: Node's `--enable-source-maps` keeps every map's text in
 * memory from start-up (~3 MB), and the first stack trace anybody reads parses main.js's map
 * into ~40 MB of heap that is never released (docs/release.md "Where the memory goes"). The
 * agent on a 1 GB gateway logs stack traces against the bundle; this command, a process of
 * its own, maps them when someone reads them.
 */
import fs from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';

/** The parts of a source map (version 3) that `node:module`'s SourceMap reads. */
const SourceMapFile = z.object({
  version: z.literal(3),
  file: z.string().default(''),
  sourceRoot: z.string().default(''),
  sources: z.array(z.string()),
  sourcesContent: z.array(z.string()).default([]),
  names: z.array(z.string()).default([]),
  mappings: z.string(),
});

/** `file:///…/lib/main.js:12:345`, `/…/lib/chunk-ABC.js:1:2`: folder, file, line and column (1-based). */
const FRAME = /(?:file:\/\/)?(\/[^\s():"'\\]*\/lib\/)([\w.-]+\.js):(\d+):(\d+)/g;

export interface StackMapper {
  /** The text with every frame of the bundle mapped; a frame that cannot be mapped stays as it is. */
  map(text: string): string;
}

/**
 * A mapper for frames of a release bundle. A frame is mapped with the map beside the file it
 * names (an updated gateway's old log lines name the old version's folder); when that folder
 * is not on this machine (a log from elsewhere), with the map of the same name in `libDir`.
 * A map is read once per folder and file the frames name, when a frame first needs it.
 */
export function stackMapper(libDir: string, warn: (line: string) => void = () => {}): StackMapper {
  const maps = new Map<string, SourceMap | null>();
  const read = (file: string): SourceMap | null => {
    try {
      return new SourceMap(SourceMapFile.parse(JSON.parse(fs.readFileSync(file, 'utf8'))));
    } catch (err) {
      warn(`${file} is not a readable source map (${(err as Error).message.split('\n')[0]}); its frames are left as they are`);
      return null;
    }
  };
  const mapFor = (dir: string, name: string): SourceMap | null => {
    const key = dir + name;
    if (!maps.has(key)) {
      const own = path.join(dir, `${name}.map`);
      const file = fs.existsSync(own) ? own : path.join(libDir, `${name}.map`);
      // A file without a map (another program's frame) keeps its frame as it is.
      maps.set(key, fs.existsSync(file) ? read(file) : null);
    }
    return maps.get(key) ?? null;
  };
  return {
    map: (text) =>
      text.replace(FRAME, (frame, dir: string, name: string, line: string, column: string) => {
        const entry = mapFor(dir, name)?.findEntry(Number(line) - 1, Number(column) - 1);
        if (!entry || !('originalSource' in entry) || !entry.originalSource) return frame;
        // Sources are named relative to the repository (scripts/release/bundle.ts).
        return `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
      }),
  };
}

/**
 * Maps FILE (or `input`) line by line, so a whole journal goes through in constant memory;
 * a frame never spans lines (JSON log lines escape the stack's newlines).
 */
export async function stackCommand(libDir: string, file: string | undefined, io: { input: Readable; output: Writable; warn: (line: string) => void }): Promise<number> {
  const mapper = stackMapper(libDir, io.warn);
  try {
    await pipeline(
      file ? fs.createReadStream(file) : io.input,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const line of createInterface({ input: Readable.from(source), crlfDelay: Infinity })) yield `${mapper.map(line)}\n`;
      },
      io.output,
      { end: false },
    );
  } catch (err) {
    // A reader that stops early (`| head`) closes the pipe: not a failure of this command.
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
  }
  return 0;
}
