#!/usr/bin/env node
/** The `fedgate` executable. The only module that calls process.exit. */
import { runCli } from './run.js';

const code = await runCli(process.argv.slice(2));
// Long-running commands (coordinator, participant) resolve only when they stop; let stdout drain.
process.exitCode = code;
if (code !== 0) process.exit(code);
