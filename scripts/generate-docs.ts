import fs from 'node:fs';
import path from 'node:path';
import { generatedDocs, ROOT } from './docs.js';

for (const [rel, content] of generatedDocs()) {
  const file = path.join(ROOT, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  console.log(`wrote ${rel}`);
}
