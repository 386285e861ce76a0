import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Same stack as the technician UI; output in relay/ui/dist (served by relay/src/dashboard.ts).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2020' },
  server: { proxy: { '/graphql': { target: 'http://127.0.0.1:8090', ws: true } } },
});
