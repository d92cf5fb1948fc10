// Reads samples out of the Prometheus text a node serves on GET /metrics.

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Every sample of the metric `name` (exact name: no _bucket/_sum suffixes unless asked for). */
export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample of `name` whose labels include `labels`; 0 when there is none (a counter not yet counted). */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const hit = samples(text, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hit?.value ?? 0;
}
