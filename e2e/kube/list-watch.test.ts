// sidecar/src/kube/list-watch.ts against a real kube-apiserver + etcd (e2e/support/kube), run
// without the watch cache and compacting every second so a resourceVersion really goes out of date:
// a watch from a compacted resourceVersion (410 Gone) re-lists without reporting a loss of contact
// and without losing the objects written meanwhile, and events are handled in the order the server
// sent them, one at a time, even when the handler is slow and asynchronous.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { KubeRest } from '../../lib/src/approvals/kube-rest.ts';
import { ListWatch } from '../../sidecar/src/kube/list-watch.ts';
import type { ObjectEvent } from '../../sidecar/src/kube/list-watch.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';

jest.setTimeout(90_000);

const NS = 'list-watch';
const PATH = `/api/v1/namespaces/${NS}/configmaps`;

interface ConfigMap {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

let cluster: KubeCluster;

async function put(name: string, value: string): Promise<string> {
  const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: NS, labels: { app: 'lw' } }, data: { v: value } };
  const current = await cluster.request<ConfigMap>('admin', 'GET', `${PATH}/${name}`);
  const res = current.status === 404 ? await cluster.request<ConfigMap>('admin', 'POST', PATH, body) : await cluster.request<ConfigMap>('admin', 'PUT', `${PATH}/${name}`, body);
  if (res.status >= 300) throw new Error(`put ${name}: ${res.status}`);
  return res.body.metadata.resourceVersion!;
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: NS }], apiserverArgs: ['--watch-cache=false', '--etcd-compaction-interval=1s'] });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('ListWatch against the API server', () => {
  test('a watch from a compacted resourceVersion re-lists (410 Gone, not a loss of contact); events come in order, one handler at a time', async () => {
    await put('first', '0');
    const seen: string[] = [];
    const health: boolean[] = [];
    let lists = 0;
    let running = 0;
    let maxRunning = 0;
    const loop = new ListWatch<ConfigMap>(
      new KubeRest(cluster.kubeConfig('admin')),
      { path: PATH, labelSelector: 'app=lw', minBackoffMs: 50 },
      {
        list: async (items) => {
          lists++;
          seen.push(`list:${items.map((i) => i.metadata.name).sort().join(',')}`);
          if (lists !== 1) return;
          // Hold the first list's handler until the resourceVersion it listed at is compacted
          // away: the watch that follows must start from a resourceVersion the server no longer has.
          const probe = await put('written-while-listing', '1');
          await put('after-probe', '1');
          await eventually('the listed resourceVersion to be compacted', async () => {
            const res = await cluster.request('admin', 'GET', `${PATH}?resourceVersion=${probe}&resourceVersionMatch=Exact`);
            return res.status === 410 ? true : undefined;
          });
        },
        event: async (type: ObjectEvent, obj) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          // Slow and asynchronous: a second event must wait for this one.
          await new Promise((r) => setImmediate(r));
          await new Promise((r) => setTimeout(r, 5));
          seen.push(`${type}:${obj.metadata.name}:${obj.data?.v ?? ''}`);
          running--;
        },
        health: (healthy) => health.push(healthy),
      },
    );
    await loop.start();
    try {
      // The watch from the compacted resourceVersion got 410 and the loop listed again.
      await eventually('the re-list after 410 Gone', () => Promise.resolve(lists >= 2 ? true : undefined));
      expect(seen.slice(0, 2)).toEqual(['list:first', 'list:after-probe,first,written-while-listing']);
      expect(health).toEqual([true]);
      expect(loop.healthy).toBe(true);

      const expected: string[] = [];
      for (let i = 0; i < 8; i++) {
        await put('changing', String(i));
        expected.push(`${i === 0 ? 'ADDED' : 'MODIFIED'}:changing:${i}`);
      }
      expect((await cluster.request('admin', 'DELETE', `${PATH}/first`)).status).toBe(200);
      expected.push('DELETED:first:0');
      await eventually('every event handled', () => Promise.resolve(seen.length >= 2 + expected.length ? true : undefined));
      expect(seen.slice(2)).toEqual(expected);
      expect(maxRunning).toBe(1);
    } finally {
      await loop.stop();
    }
  });
});
