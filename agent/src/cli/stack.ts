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
  map(text: string): string;
}

/**
 * A mapper for frames of a release bundle. A frame is mapped with the map beside the file it
 * names (an updated gateway's old log lines name the old version's folder); when that folder
 * is not on this machine (a log from elsewhere), with the map of the same name in `libDir`.
 * Each map is read once, when a frame first needs it.
 */
export function stackMapper(libDir: string): StackMapper {
  const maps = new Map<string, SourceMap | null>();
  const load = (file: string): SourceMap | null => {
    if (!maps.has(file)) {
      // A file without a map (another program's frame) keeps its frame as it is.
      maps.set(file, fs.existsSync(file) ? new SourceMap(SourceMapFile.parse(JSON.parse(fs.readFileSync(file, 'utf8')))) : null);
    }
    return maps.get(file) ?? null;
  };
  return {
    map: (text) =>
      text.replace(FRAME, (frame, dir: string, name: string, line: string, column: string) => {
        const own = path.join(dir, `${name}.map`);
        const map = load(fs.existsSync(own) ? own : path.join(libDir, `${name}.map`));
        const entry = map?.findEntry(Number(line) - 1, Number(column) - 1);
        if (!entry || !('originalSource' in entry) || !entry.originalSource) return frame;
        // Sources are named relative to the repository (scripts/release/bundle.ts).
        return `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
      }),
  };
}

export async function stackCommand(libDir: string, file: string | undefined, out: (text: string) => void): Promise<number> {
  const text = file ? fs.readFileSync(file, 'utf8') : await readStdin();
  out(stackMapper(libDir).map(text));
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
