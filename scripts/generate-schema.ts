/**
 * Writes schema/pipeline.schema.json from `pipelineJsonSchema`, for editors (YAML language server, VS Code).
 * Run after changing src/core/pipeline-schema.ts: `npx tsx scripts/generate-schema.ts`.
 * A test fails while the shipped file differs from the schema in code.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatPipelineSchema } from '../src/core/pipeline-schema.js';

const target = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'schema', 'pipeline.schema.json');
await mkdir(dirname(target), { recursive: true });
await writeFile(target, formatPipelineSchema());
console.log(`wrote ${target}`);
