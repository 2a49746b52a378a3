// Measures how long the kube harness takes to be usable: one cold start (etcd and kube-apiserver
// binaries evicted from the page cache first, as on a fresh CI machine after `make tools` restored
// them from the cache) and N warm starts. `node e2e/support/kube/measure-start.ts [--warm N]`
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KubeCluster, binary } from './cluster.ts';

const { values } = parseArgs({ options: { warm: { type: 'string', default: '3' } } });

function evictFromPageCache(files: string[]): boolean {
  // POSIX_FADV_DONTNEED on our own two binaries only; nothing else on the machine is touched.
  const script = 'import os,sys\nfor f in sys.argv[1:]:\n  fd=os.open(f,os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)';
  return spawnSync('python3', ['-c', script, ...files], { stdio: 'inherit' }).status === 0;
}

async function once(label: string): Promise<void> {
  const cluster = await KubeCluster.start({ namespaces: [{ name: 'a' }, { name: 'b', labels: { 'sluice.io/inject': 'true' } }] });
  const t = cluster.timings;
  const stopStarted = performance.now();
  await cluster.stop();
  console.log(`${label.padEnd(6)} etcd ${t.etcdMs.toFixed(0).padStart(5)} ms  apiserver ${t.apiserverMs.toFixed(0).padStart(5)} ms  namespaces ${t.namespacesMs.toFixed(0).padStart(4)} ms  total ${t.totalMs.toFixed(0).padStart(5)} ms  stop ${(performance.now() - stopStarted).toFixed(0)} ms`);
}

const bins = [realpathSync(binary('etcd')), realpathSync(binary('kube-apiserver'))];
console.log(evictFromPageCache(bins) ? 'cold: binaries evicted from the page cache' : 'cold: could not evict (python3 missing?); first start only');
await once('cold');
for (let i = 1; i <= Number(values.warm); i++) await once(`warm${i}`);
