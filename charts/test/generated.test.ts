// The generated files are what the code in charts/src produces now (values.schema.json,
// values.yaml, the README's values table, dashboards, rules, docs/metrics.md), and the values
// schema documents every value and refuses unknown keys everywhere.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { DASHBOARDS } from '../src/dashboards/index.ts';
import { CHART_DIR, generatedFiles, staleFiles } from '../src/generate.ts';
import { undocumented, valueRows } from '../src/values-docs.ts';
import type { JsonSchema } from '../src/values-docs.ts';
import { EMBEDDED_SCHEMA_PATHS, PASSTHROUGH_PATHS, defaultValues, valuesJsonSchema } from '../src/values-schema.ts';

/**
 * Paths of object schemas that accept keys they do not declare. Maps are fine when their values
 * are strings (labels, annotations) or strict objects themselves.
 */
function openObjects(schema: JsonSchema, path = '(root)'): string[] {
  const open: string[] = [];
  const isObject = schema.type === 'object' || schema.properties !== undefined;
  if (isObject) {
    const extra = schema.additionalProperties;
    if (schema.properties && Object.keys(schema.properties).length > 0) {
      if (extra !== false) open.push(path);
    } else if (typeof extra === 'object' && (extra.type === 'string' || (extra.properties && extra.additionalProperties === false))) {
      open.push(...openObjects(extra, `${path}.*`));
    } else {
      open.push(path);
    }
  }
  for (const [k, v] of Object.entries(schema.properties ?? {})) open.push(...openObjects(v, path === '(root)' ? k : `${path}.${k}`));
  if (schema.items) open.push(...openObjects(schema.items, `${path}[]`));
  for (const alt of schema.anyOf ?? []) open.push(...openObjects(alt, path));
  return open;
}

describe('generated files are fresh', () => {
  test('values.schema.json, values.yaml, README table, dashboards, rules and docs/metrics.md match charts/src', async () => {
    expect(await staleFiles()).toEqual([]);
  });

  test('the generator writes each dashboard it ships', async () => {
    const files = await generatedFiles();
    for (const d of DASHBOARDS) expect(files.has(`charts/sluice/dashboards/${d.file}`)).toBe(true);
  });
});

describe('values schema', () => {
  const schema = valuesJsonSchema();

  test('every value has a description', () => {
    expect(undocumented(schema, { embedded: EMBEDDED_SCHEMA_PATHS })).toEqual([]);
  });

  test('additionalProperties: false on every object but Kubernetes objects passed through', () => {
    expect(openObjects(schema).sort()).toEqual([...PASSTHROUGH_PATHS].sort());
  });

  test('values.yaml is the schema’s defaults, and Helm reads it back the same', () => {
    const yaml = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as unknown;
    expect(yaml).toEqual(JSON.parse(JSON.stringify(defaultValues())));
  });

  test('the README table lists every leaf value once', () => {
    const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
    const rows = valueRows(schema, { embedded: EMBEDDED_SCHEMA_PATHS });
    expect(new Set(rows.map((r) => r.path)).size).toBe(rows.length);
    for (const r of rows) expect(readme).toContain(`| \`${r.path}\` |`);
    expect(rows.length).toBeGreaterThan(60);
  });
});
