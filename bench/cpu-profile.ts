// A CPU profile of this thread over one stretch of a benchmark only (BENCH_CPU_PROFILE=<file> in
// bench:payments and bench:hot): `node --cpu-prof` covers the whole process, whose setup (modules,
// schema, orders reserved up front) can outweigh the stretch measured. The file opens in Chrome's
// DevTools (Performance) or any .cpuprofile viewer.

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/** Starts profiling this thread; the returned function stops and writes the profile to `file`. */
export async function profileThread(file: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
    console.log(`  CPU profile of the measured stretch: ${file}`);
  };
}
