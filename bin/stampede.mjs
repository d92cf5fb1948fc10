#!/usr/bin/env node
// The `stampede` command: loads the TypeScript sources through tsx, then runs the CLI.
//
// `stampede sim` runs a load generator and an engine in one process. With V8 semi-spaces of 32 MiB
// (the young generation; Node's default is 16) it scavenges the requests in flight half as often: a
// 100,000-buyer synthetic sale ran ~8% faster (docs/performance.md, "Session 6"). V8 takes the size
// only at start, so the simulator starts itself once more with it, unless the size was given already
// (node flags or NODE_OPTIONS) or STAMPEDE_SIM_SEMI_SPACE_MIB=0 asks for Node's default. The server
// gets the same size as a node flag from `npm start` and the Dockerfile (reservations over HTTP ~30%
// faster: docs/performance.md, "Session 7"), not by starting itself again: a second process would
// outlive a SIGKILL of the first.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const SEMI_SPACE_FLAG = '--max-semi-space-size';
const args = process.argv.slice(2);
const rawSemiSpace = process.env.STAMPEDE_SIM_SEMI_SPACE_MIB;
const simSemiSpace_mib = rawSemiSpace === undefined || rawSemiSpace === '' ? 32 : Number(rawSemiSpace);
const semiSpaceGiven = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith(SEMI_SPACE_FLAG));

if (args[0] === 'sim' && !(Number.isInteger(simSemiSpace_mib) && simSemiSpace_mib >= 0 && simSemiSpace_mib <= 1024)) {
  process.stderr.write(`stampede: STAMPEDE_SIM_SEMI_SPACE_MIB must be an integer from 0 to 1024 (got ${JSON.stringify(rawSemiSpace)})\n`);
  process.exit(2);
} else if (args[0] === 'sim' && !semiSpaceGiven && simSemiSpace_mib > 0) {
  const child = spawn(process.execPath, [`${SEMI_SPACE_FLAG}=${simSemiSpace_mib}`, ...process.execArgv, fileURLToPath(import.meta.url), ...args], { stdio: 'inherit' });
  // Ctrl-C reaches both processes (one process group): the child ends the run and reports; this one
  // waits for it. A termination sent to this process alone is passed on.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('error', (error) => {
    process.stderr.write(`stampede: could not start the simulator: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 15)));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../app/cli.ts');
  await main(args);
}
