/**
 * The `@attune/shared-schema/constants` entry is what the browser SDK imports, so it must
 * carry no zod at runtime: bundled on its own with esbuild (as the SDK's build would),
 * nothing from zod may end up in the output.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const SRC = import.meta.dirname;

async function bundleConstants(treeShaking: boolean) {
  const result = await build({
    stdin: {
      // Import the package entry the way the SDK does, and keep every export alive.
      contents: "export * from '@attune/shared-schema/constants';",
      resolveDir: join(SRC, '..'),
      loader: 'ts',
    },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    treeShaking,
    metafile: true,
    logLevel: 'silent',
  });
  const text = result.outputFiles.map((f) => f.text).join('\n');
  return { text, inputs: Object.keys(result.metafile.inputs) };
}

describe('@attune/shared-schema/constants', () => {
  it('bundles without zod, even with tree shaking off', async () => {
    for (const treeShaking of [true, false]) {
      const { text, inputs } = await bundleConstants(treeShaking);
      expect(inputs.filter((p) => p.includes('zod'))).toEqual([]);
      expect(inputs.map((p) => p.replace(/^.*shared-schema\//, ''))).toEqual(['src/constants.ts', '<stdin>']);
      expect(text).not.toMatch(/zod|ZodError|\$ZodType|safeParse/i);
      // The bundle is not vacuous: the limits and names the SDK needs are in it.
      expect(text).toContain('maxBatchEvents');
      expect(text).toContain('product.viewed');
    }
  });

  it('imports and re-exports other modules only as types', () => {
    const source = readFileSync(join(SRC, 'constants.ts'), 'utf8');
    const statements = source.match(/^(import|export)\b[^;]*\bfrom\s+['"][^'"]+['"];/gm) ?? [];
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) expect(statement).toMatch(/^(import|export) type\b/);
  });
});
