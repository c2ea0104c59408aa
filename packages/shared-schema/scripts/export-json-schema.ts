/**
 * Writes the committed JSON Schema files (json-schema/*.schema.json) from the zod
 * schemas. Run `pnpm --filter @attune/shared-schema json-schema` after changing a schema;
 * src/json-schema.test.ts fails until the files match.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildJsonSchemas, serializeJsonSchema } from '../src/json-schema.ts';

const dir = join(import.meta.dirname, '..', 'json-schema');
mkdirSync(dir, { recursive: true });
for (const [file, schema] of Object.entries(buildJsonSchemas())) {
  writeFileSync(join(dir, file), serializeJsonSchema(schema));
  console.log(`wrote json-schema/${file}`);
}
