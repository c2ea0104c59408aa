#!/usr/bin/env node
/**
 * One call for `./attune up`: install (once), bootstrap (fast when unchanged), seed
 * (once) and start. Leaves Directus running in the background; `stop.mjs` stops it.
 */
import { bootstrap } from './bootstrap.mjs';
import { instance } from './lib.mjs';
import { seed } from './seed.mjs';

const inst = instance();
await bootstrap(inst);
if (!process.argv.includes('--no-seed')) await seed(inst);
