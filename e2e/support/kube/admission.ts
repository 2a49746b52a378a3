// Registering admission webhooks served by a test process: the shipped manifests reference an
// in-cluster Service; here their clientConfig is pointed at a loopback URL with the test CA, so
// tests exercise exactly the selectors, rules and policies that ship. Also a bounded poll for
// "the API server has picked the registration up" (its informers apply it asynchronously).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface WebhookEntry {
  clientConfig: { service?: { path?: string }; url?: string; caBundle?: string };
  [k: string]: unknown;
}

export function readManifests(path: string): Manifest[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as Manifest).filter(Boolean);
}

/** The configuration with every webhook calling `baseUrl` + its service path, trusting `caPem`. */
export function pointWebhooksAt(config: Manifest, baseUrl: string, caPem: string): Manifest {
  const copy = structuredClone(config);
  for (const hook of (copy.webhooks as WebhookEntry[] | undefined) ?? []) {
    const path = hook.clientConfig.service?.path ?? '/';
    hook.clientConfig = { url: `${baseUrl}${path}`, caBundle: Buffer.from(caPem).toString('base64') };
  }
  return copy;
}

/** Polls `probe` every 100 ms until it returns a value other than undefined; bounded. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err instanceof Error ? err : new Error(String(err));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
}
