/** `tu-agent version`: agent, build commit, runtime, model and head versions. */
import fs from 'node:fs';
import path from 'node:path';
import type { AgentConfig } from '@tu/firmware-config';
import { appLayout, agentVersion } from '../release/layout.js';
import { modelPaths } from '../services/run.js';

function headLine(headPath: string | undefined): string {
  if (!headPath) return 'head none (machine types need a head; see docs/release.md)';
  try {
    const head = JSON.parse(fs.readFileSync(headPath, 'utf8')) as { id?: unknown; version?: unknown; source?: { backbone?: { version?: unknown } } };
    return `head ${String(head.id ?? path.basename(headPath))} v${String(head.version ?? '?')} (backbone ${String(head.source?.backbone?.version ?? '?')}) ${headPath}`;
  } catch (err) {
    return `head unreadable at ${headPath}: ${(err as Error).message}`;
  }
}

export function versionLines(config: AgentConfig | null): string[] {
  const layout = appLayout();
  const r = layout.release;
  const lines = [
    `tu-agent ${agentVersion()}${r ? ` (commit ${r.commit}, built ${r.builtAt}, linux-${r.arch})` : ' (checkout)'}`,
    `node ${process.version} ${process.platform}-${process.arch}`,
  ];
  if (r) lines.push(`model ${r.model.id} ${r.model.version} (shipped)`);
  if (config) {
    try {
      const { modelDir, headPath } = modelPaths(config);
      if (!r || config.model.dir) lines.push(`model dir ${modelDir}`);
      lines.push(headLine(headPath));
    } catch (err) {
      lines.push(`model not configured: ${(err as Error).message}`);
    }
  } else if (r) {
    lines.push(r.head ? `head ${r.head.id} ${r.head.version} (backbone ${r.head.backbone}, shipped)` : 'head none shipped');
  }
  return lines;
}
