// Reads a V8 CPU profile (node --cpu-prof) into the figures a benchmark prints: self time by
// area (policy WASM, undici, node's http/tls/streams, sluice's own code, GC, …), the top
// self-time functions, and time by sluice call site: each sample is charged to the innermost
// sluice function on its stack, so a site's figure is its own code plus the libraries it called
// (policy evaluation = engine.evaluate's row), and samples with no sluice frame (socket I/O and
// the HTTP parser driven by the event loop, GC) stay apart. A pure function over the JSON.

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number; scriptId?: string };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface CpuProfileSummary {
  totalMs: number;
  /** everything but (idle) */
  busyMs: number;
  byArea: { area: string; selfMs: number; pctOfBusy: number }[];
  topSelf: { name: string; where: string; area: string; selfMs: number; pctOfBusy: number }[];
  /** samples charged to the innermost sluice frame on their stack ('(no sluice frame)' otherwise) */
  bySluiceSite: { name: string; where: string; totalMs: number; pctOfBusy: number }[];
  hotspots: { label: string; totalMs: number; pctOfBusy: number }[];
}

export interface SummarizeOptions {
  /** the repository root, to tell sluice's own files from the rest and shorten paths */
  root: string;
  top?: number;
  /** only samples taken this long after the profile started (ms), e.g. to leave out start-up */
  window?: { fromMs: number; toMs: number };
  /** functions whose inclusive time (with everything they call) is reported by label */
  hotspots?: { label: string; functionName: string; urlIncludes: string }[];
}

function pathOf(url: string, root: string): string {
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  return path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}

function isSluice(path: string): boolean {
  return /^(sidecar|api|webhook)\/src\//.test(path);
}

/** Which part of the stack a frame belongs to; the areas the lead asked about are named plainly. */
export function areaOf(frame: CpuProfileNode['callFrame'], root: string): string {
  const { functionName: name, url } = frame;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8/native (program)';
  if (url.startsWith('wasm://') || /^\$?(opa_|wasm-function)/.test(name)) return 'policy: opa-wasm WASM';
  const path = pathOf(url, root);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
  if (pkg === '@open-policy-agent/opa-wasm') return 'policy: opa-wasm JS glue';
  if (pkg) return `npm: ${pkg}`;
  if (isSluice(path)) return `sluice: ${path.split('/')[0]}/src/${path.split('/')[2]?.replace(/\.ts$/, '') ?? ''}`;
  if (path.startsWith('node:')) {
    if (/^node:(_http|http|internal\/http)/.test(path)) return 'node: http';
    if (/^node:(_tls|tls|internal\/tls|internal\/crypto|crypto)/.test(path)) return 'node: tls/crypto';
    if (/^node:(internal\/streams|stream|internal\/webstreams)/.test(path)) return 'node: streams';
    if (/^node:(net|internal\/stream_base_commons|internal\/net)/.test(path)) return 'node: net';
    if (/^node:(events|internal\/event_target)/.test(path)) return 'node: events';
    if (/^node:internal\/(process\/task_queues|timers|async_hooks)|^node:timers/.test(path)) return 'node: task queues/timers';
    return 'node: other';
  }
  if (url === '') return 'V8/native builtins';
  return 'other';
}

const NO_SLUICE_FRAME = '';

export function summarizeCpuProfile(profile: CpuProfile, o: SummarizeOptions): CpuProfileSummary {
  const top = o.top ?? 20;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // A sample's time is the gap to the next sample (the last one gets the mean gap).
  const deltas = profile.timeDeltas;
  const meanGap = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
  const selfUs = new Map<number, number>();
  const siteUs = new Map<string, number>();
  const hotspots = o.hotspots ?? [];
  const hotUs = hotspots.map(() => 0);
  const hotOf = (n: CpuProfileNode) => hotspots.findIndex((h) => h.functionName === n.callFrame.functionName && n.callFrame.url.includes(h.urlIncludes));
  const frameKey = (n: CpuProfileNode) => `${n.callFrame.functionName}\u0000${n.callFrame.url}\u0000${n.callFrame.lineNumber}`;
  const from = (o.window?.fromMs ?? 0) * 1000;
  const to = (o.window?.toMs ?? Infinity) * 1000;
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += deltas[i] ?? 0;
    if (at < from || at > to) continue;
    const id = profile.samples[i]!;
    const us = i + 1 < deltas.length ? Math.max(0, deltas[i + 1]!) : meanGap;
    selfUs.set(id, (selfUs.get(id) ?? 0) + us);
    let site = NO_SLUICE_FRAME;
    const hit = new Set<number>(); // a recursive hotspot counts once per sample
    for (let frame: number | undefined = id; frame !== undefined; frame = parent.get(frame)) {
      const n = byId.get(frame)!;
      if (site === NO_SLUICE_FRAME && isSluice(pathOf(n.callFrame.url, o.root))) site = frameKey(n);
      if (hotspots.length) {
        const h = hotOf(n);
        if (h >= 0) hit.add(h);
      }
    }
    for (const h of hit) hotUs[h] = hotUs[h]! + us;
    if (areaOf(byId.get(id)!.callFrame, o.root) !== 'idle') siteUs.set(site, (siteUs.get(site) ?? 0) + us);
  }

  let totalUs = 0;
  let idleUs = 0;
  const area = new Map<string, number>();
  const fn = new Map<string, { name: string; where: string; area: string; us: number }>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const a = areaOf(n.callFrame, o.root);
    totalUs += us;
    if (a === 'idle') idleUs += us;
    area.set(a, (area.get(a) ?? 0) + us);
    const key = frameKey(n);
    const entry = fn.get(key) ?? { name: n.callFrame.functionName || '(anonymous)', where: whereOf(n, o.root), area: a, us: 0 };
    entry.us += us;
    fn.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? (100 * us) / busyUs : 0);
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    byArea: [...area.entries()]
      .filter(([a]) => a !== 'idle')
      .sort((x, y) => y[1] - x[1])
      .map(([a, us]) => ({ area: a, selfMs: us / 1000, pctOfBusy: pct(us) })),
    topSelf: [...fn.values()]
      .filter((f) => f.area !== 'idle')
      .sort((x, y) => y.us - x.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, area: f.area, selfMs: f.us / 1000, pctOfBusy: pct(f.us) })),
    bySluiceSite: [...siteUs.entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, top)
      .map(([key, us]) => {
        if (key === NO_SLUICE_FRAME) return { name: '(no sluice frame: event loop, node I/O, GC)', where: '', totalMs: us / 1000, pctOfBusy: pct(us) };
        const [name, url, line] = key.split('\u0000') as [string, string, string];
        return { name: name || '(anonymous)', where: `${pathOf(url, o.root)}:${Number(line) + 1}`, totalMs: us / 1000, pctOfBusy: pct(us) };
      }),
    hotspots: hotspots.map((h, i) => ({ label: h.label, totalMs: hotUs[i]! / 1000, pctOfBusy: pct(hotUs[i]!) })),
  };
}

function whereOf(n: CpuProfileNode, root: string): string {
  const path = pathOf(n.callFrame.url, root);
  if (!path) return '';
  const short = path.replace(/^.*node_modules\//, '');
  return `${short}:${n.callFrame.lineNumber + 1}`;
}
