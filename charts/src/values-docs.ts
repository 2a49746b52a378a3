// Renders the documentation of the chart's values from the schema: values.yaml (every default
// with its description as a comment) and the README's table (one row per leaf value). Pure
// functions over the JSON Schema; writing files is generate.ts's job.
import { Document, isMap, isScalar, isSeq } from 'yaml';
import type { YAMLMap } from 'yaml';

export interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  format?: string;
}

export interface DocOptions {
  /**
   * Paths of values whose schema is another component's (documented with that component): each is
   * one row, and the fields inside need no description here.
   */
  embedded?: readonly string[];
}

export interface ValueRow {
  path: string;
  type: string;
  default: string;
  description: string;
}

function typeOf(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const t = Array.isArray(s.type) ? s.type.join(' or ') : (s.type ?? 'any');
  if (t === 'array' && s.items) return `list of ${s.items.properties ? 'object' : typeOf(s.items)}`;
  if (t === 'object' && !s.properties && typeof s.additionalProperties === 'object') return `map of ${typeOf(s.additionalProperties)}`;
  return t;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Leaves: scalars, lists, maps and embedded schemas; objects with declared properties are walked
 * into. A leaf without its own default shows the one its parent's default gives it
 * (resources.requests.cpu takes "50m" from requests' default), and "—" when neither has one (an
 * unset optional value).
 */
export function valueRows(schema: JsonSchema, options: DocOptions = {}, prefix = '', inherited: unknown = undefined): ValueRow[] {
  const rows: ValueRow[] = [];
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const fromParent = isRecord(inherited) ? inherited[key] : undefined;
    const value = prop.default !== undefined ? prop.default : fromParent;
    if (prop.properties && Object.keys(prop.properties).length > 0 && !prop.anyOf && !options.embedded?.includes(path)) {
      rows.push(...valueRows(prop, options, path, value));
      continue;
    }
    rows.push({ path, type: typeOf(prop), default: value === undefined ? '—' : JSON.stringify(value), description: prop.description ?? '' });
  }
  return rows;
}

/** Every leaf without a description, for the test that keeps every value documented. */
export function undocumented(schema: JsonSchema, options: DocOptions = {}, prefix = ''): string[] {
  const missing: string[] = [];
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!prop.description) missing.push(path);
    if (options.embedded?.includes(path)) continue;
    for (const sub of [prop, prop.items, ...(prop.anyOf ?? [])]) if (sub?.properties) missing.push(...undocumented(sub, options, sub === prop.items ? `${path}[]` : path));
  }
  return [...new Set(missing)];
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderValuesTable(schema: JsonSchema, options: DocOptions = {}): string {
  const lines = ['| value | type | default | description |', '|---|---|---|---|'];
  for (const r of valueRows(schema, options)) {
    const value = r.default === '—' ? '—' : `\`${escapeCell(r.default)}\``;
    lines.push(`| \`${r.path}\` | ${escapeCell(r.type)} | ${value} | ${escapeCell(r.description)} |`);
  }
  return lines.join('\n') + '\n';
}

function describeMap(map: YAMLMap, schema: JsonSchema, depth: number): void {
  for (const item of map.items) {
    if (!isScalar(item.key)) continue;
    const prop = schema.properties?.[String(item.key.value)];
    if (!prop) continue;
    if (prop.description) item.key.commentBefore = ` ${prop.description}`;
    const nested = prop.anyOf?.find((s) => s.properties) ?? prop;
    if (isMap(item.value) && nested.properties) describeMap(item.value, nested, depth + 1);
    if (isSeq(item.value) && item.value.items.length === 0) item.value.flow = true;
    if (isMap(item.value) && item.value.items.length === 0) item.value.flow = true;
  }
  if (depth > 0) return;
  // A blank line between top-level sections keeps the file readable.
  for (const item of map.items.slice(1)) if (isScalar(item.key)) item.key.spaceBefore = true;
}

export function renderValuesYaml(defaults: unknown, schema: JsonSchema, header: string): string {
  const doc = new Document(defaults);
  doc.commentBefore = header;
  if (isMap(doc.contents)) describeMap(doc.contents, schema, 0);
  return doc.toString({ lineWidth: 0 });
}
