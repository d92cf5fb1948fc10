// A sampling heap profile of this thread over one stretch of a benchmark only (BENCH_HEAP_PROFILE=<file>
// in bench:hot): where the bytes allocated come from, collected ones included, which is what fills the
// young generation and sets how often a scavenge stops the engine's thread. The file opens in Chrome's
// DevTools (Memory, "Allocation sampling"); `summary` prints the heaviest allocation sites.

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** Starts sampling; the returned function stops, writes the profile to `file` and returns its top sites. */
export async function profileHeap(file: string): Promise<(per: number, perWhat: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4_096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return async (per, perWhat) => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (node: SamplingNode): void => {
      const f = node.callFrame;
      const site = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules\/)?/, '')}:${f.lineNumber + 1}`;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
      for (const child of node.children) walk(child);
    };
    walk(profile.head as SamplingNode);
    console.log(`  heap profile of the measured stretch: ${file}; ${(total / per).toFixed(0)} B allocated per ${perWhat}, the heaviest sites:`);
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`    ${(bytes / per).toFixed(0).padStart(6)} B  ${site}`);
  };
}
