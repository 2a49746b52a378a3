// Writes api/schemas/*.json from the zod contracts. The Rego library's `# METADATA` schema
// annotations point at these files, and a unit test fails when they are stale.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSchemas } from '../src/json-schemas.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');
for (const [file, text] of Object.entries(renderSchemas())) {
  writeFileSync(join(dir, file), text);
  console.log(`wrote api/schemas/${file}`);
}
