#!/usr/bin/env node
// The `stampede` command: loads the TypeScript sources through tsx, then runs the CLI.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../app/cli.ts');
await main(process.argv.slice(2));
