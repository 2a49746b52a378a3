// Prints the import graph between sluice's top-level areas (sidecar/src, cli/src, e2e/support, …)
// from the relative imports of every TypeScript/JavaScript source, and which edges cross a
// boundary of tools/boundaries.ts (allowed leaks, and new ones). `node tools/import-graph.ts`;
// `--dot` prints Graphviz instead; `--leaks` lists the crossing imports file by file. Reads files
// only (a regex over import/export/import() specifiers, comment lines skipped); it never runs them.
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { ALLOWED_LEAKS, allowListMatches as matchesFrom, areaOf, boundaryViolation } from './boundaries.ts';

const SKIP_DIRS = new Set(['node_modules', '.tools', '.work', '.git', 'dist', 'coverage', 'testdata', 'build']);
const SOURCE = /\.(ts|mts|js)$/;
const SPECIFIER = /(?:^|[^\w.$])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|(?:^|[^\w.$])import\(\s*['"]([^'"]+)['"]\s*\)/g;

export interface ImportEdge {
  readonly from: string;
  readonly to: string;
  readonly line: number;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (SKIP_DIRS.has(name)) return [];
    const p = join(dir, name);
    const st = lstatSync(p); // symlinks (charts/sluice/files/* → other folders) are skipped: their targets are walked where they live
    return st.isDirectory() ? walk(p) : st.isFile() && SOURCE.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every relative import of the repository's sources, as repository-relative file paths. */
export function importEdges(root: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const abs of walk(root)) {
    const from = relative(root, abs).split(sep).join('/');
    readFileSync(abs, 'utf8')
      .split('\n')
      .forEach((text, i) => {
        if (/^\s*(\/\/|\*|\/\*)/.test(text)) return;
        for (const m of text.matchAll(SPECIFIER)) {
          const spec = m[1] ?? m[2]!;
          if (spec.startsWith('.')) edges.push({ from, to: normalize(join(dirname(from), spec)).split(sep).join('/'), line: i + 1 });
        }
      });
  }
  return edges;
}

function main(argv: string[]): void {
  const root = join(import.meta.dirname, '..');
  const edges = importEdges(root).filter((e) => areaOf(e.from) !== areaOf(e.to));
  const counts = new Map<string, { n: number; leaks: number; allowed: number }>();
  const leaks: string[] = [];
  for (const e of edges) {
    const key = `${areaOf(e.from)} -> ${areaOf(e.to)}`;
    const c = counts.get(key) ?? { n: 0, leaks: 0, allowed: 0 };
    c.n++;
    const why = boundaryViolation(e.from, e.to);
    if (why) {
      c.leaks++;
      leaks.push(`${e.from}:${e.line} -> ${e.to}: ${why}`);
    } else if (crossesWithoutAllowList(e.from, e.to)) c.allowed++;
    counts.set(key, c);
  }
  const keys = [...counts.keys()].sort();
  if (argv.includes('--dot')) {
    console.log('digraph sluice {\n  rankdir=LR;');
    for (const k of keys) {
      const [a, b] = k.split(' -> ');
      const c = counts.get(k)!;
      console.log(`  "${a}" -> "${b}" [label=${c.n}${c.allowed || c.leaks ? ', color=red' : ''}];`);
    }
    console.log('}');
    return;
  }
  console.log('imports between areas (count; allowed leaks on the tools/boundaries.ts allow-list; new leaks):');
  for (const k of keys) {
    const c = counts.get(k)!;
    console.log(`  ${k.padEnd(44)} ${String(c.n).padStart(4)}${c.allowed ? `  allow-listed ${c.allowed}` : ''}${c.leaks ? `  LEAK ${c.leaks}` : ''}`);
  }
  const allowed = edges.filter((e) => crossesWithoutAllowList(e.from, e.to)).length;
  console.log(`\n${edges.length} cross-area imports; ${allowed} on the allow-list (issue 22 removes them); ${leaks.length} new leaks`);
  if (argv.includes('--leaks')) for (const e of edges.filter((x) => crossesWithoutAllowList(x.from, x.to))) console.log(`  allow-listed: ${e.from}:${e.line} -> ${e.to}`);
  for (const l of leaks) console.log(`  LEAK ${l}`);
  const stale = ALLOWED_LEAKS.filter((a) => !edges.some((e) => e.to === a.to && crossesWithoutAllowList(e.from, e.to) && !boundaryViolation(e.from, e.to) && matchesFrom(a.from, e.from)));
  for (const a of stale) console.log(`  stale allow-list entry (no import uses it; delete it from tools/boundaries.ts): ${a.from} -> ${a.to}`);
  if (leaks.length) process.exitCode = 1;
}

/** Whether the import would cross a boundary if the allow-list were empty. */
function crossesWithoutAllowList(from: string, to: string): boolean {
  return boundaryViolation(from, to, { ignoreAllowList: true }) !== undefined;
}

if (import.meta.filename === process.argv[1]) main(process.argv.slice(2));
