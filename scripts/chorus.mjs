#!/usr/bin/env node
// The `chorus` inspector bin: loads TypeScript through tsx, then runs cluster/inspector/cli.ts.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../cluster/inspector/cli.ts');
process.exitCode = await main(process.argv.slice(2));
