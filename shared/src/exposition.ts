export type Sample = [labels: Record<string, string>, value: number];

const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Prometheus text exposition format 0.0.4 (agent and relay `/metrics`). */
export class Exposition {
  #lines: string[] = [];
  metric(name: string, type: 'counter' | 'gauge', help: string, samples: number | Sample[]): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const list: Sample[] = typeof samples === 'number' ? [[{}, samples]] : samples;
    for (const [labels, value] of list) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
      this.#lines.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
    return this;
  }
  toString(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}
