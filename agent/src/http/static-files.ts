import fs from 'node:fs/promises';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticFile {
  body: Buffer;
  type: string;
  /** Vite's hashed files under assets/ never change; everything else is revalidated. */
  cacheControl: string;
}

/**
 * Reads one file of a built front end (Vite output) for a URL path, or undefined when it
 * does not exist. The path is resolved inside `root` only (no traversal, no dotfiles).
 */
export async function readStatic(root: string, urlPath: string): Promise<StaticFile | undefined> {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0] ?? '/');
  } catch {
    return undefined;
  }
  if (rel === '/' || rel === '') rel = '/index.html';
  if (rel.includes('\0') || rel.split('/').some((seg) => seg.startsWith('.'))) return undefined;
  const abs = path.resolve(root, `.${rel}`);
  if (!abs.startsWith(path.resolve(root) + path.sep)) return undefined;
  try {
    const body = await fs.readFile(abs);
    return {
      body,
      type: TYPES[path.extname(abs).toLowerCase()] ?? 'application/octet-stream',
      cacheControl: rel.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
  } catch {
    return undefined;
  }
}
