#!/usr/bin/env node
/** Starts the local Directus in the background (bootstraps it first if it never was). */
import { existsSync } from 'node:fs';
import { bootstrap } from './bootstrap.mjs';
import { instance } from './lib.mjs';
import { startServer } from './server.mjs';

const inst = instance();
if (!existsSync(inst.envFile) || !existsSync(`${inst.dataDir}/bootstrapped`)) await bootstrap(inst);
else await startServer(inst);
