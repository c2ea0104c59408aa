#!/usr/bin/env node
/** Stops the local Directus started by start.mjs (by its recorded pid). */
import { instance } from './lib.mjs';
import { stopServer } from './server.mjs';

await stopServer(instance());
