// Writes what agent containers trust: the pod CA alone (ca.crt, for NODE_EXTRA_CA_CERTS) and the
// system roots plus the pod CA (ca-bundle.crt, for SSL_CERT_FILE and friends, which replace the
// system store). Written to a temp name and renamed, so an agent never reads half a file.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { TRUST_BUNDLE_FILE, TRUST_CA_FILE } from '../../../api/src/index.ts';

export async function writeTrustBundle(dir: string, caPem: string): Promise<{ caFile: string; bundleFile: string }> {
  await mkdir(dir, { recursive: true });
  const caFile = join(dir, TRUST_CA_FILE);
  const bundleFile = join(dir, TRUST_BUNDLE_FILE);
  const bundle = `${rootCertificates.join('\n')}\n${caPem}`;
  for (const [file, text] of [
    [caFile, caPem],
    [bundleFile, bundle],
  ] as const) {
    await writeFile(`${file}.tmp`, text, { mode: 0o644 });
    await rename(`${file}.tmp`, file);
  }
  return { caFile, bundleFile };
}
