// A test AWS for credential tests: moto provisioned with an admin, the hop's own user, a role for
// web identities and a bucket, IAM enforced, and the verifying hop in front serving the AWS names
// (STS, S3 path and virtual-hosted, plus `localhost` for agents that try to go around the sidecar).
// Tokens are minted by the real kube-apiserver with TokenRequest and checked against its JWKS.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeCluster } from '../kube/cluster.ts';
import { createTestCa } from '../../../testkit/sidecar/upstreams.ts';
import type { TestCa } from '../../../testkit/sidecar/upstreams.ts';
import type { Jwks } from './jwks.ts';
import { Moto } from './moto.ts';
import type { AwsUserKeys } from './moto.ts';
import { VerifyingHop } from './verifying-hop.ts';

export interface StsWorldOptions {
  namespace: string;
  serviceAccount: string;
  bucket: string;
  /** the audience STS accepts (IAM OIDC provider client id) */
  audience?: string;
  /** the hop's clock */
  now?: () => number;
  /** the hop's listen address (default loopback) */
  host?: string;
}

export interface StsWorld {
  moto: Moto;
  hop: VerifyingHop;
  ca: TestCa;
  admin: AwsUserKeys;
  roleArn: string;
  issuer: string;
  /** name → hop address, for the sidecar's resolve overrides */
  resolve: Record<string, string>;
  close(): Promise<void>;
}

export function awsNames(bucket: string): string[] {
  return [
    'sts.amazonaws.com',
    'sts.us-east-1.amazonaws.com',
    's3.amazonaws.com',
    's3.us-east-1.amazonaws.com',
    `${bucket}.s3.amazonaws.com`,
    `${bucket}.s3.us-east-1.amazonaws.com`,
    'localhost',
  ];
}

/** A token for `namespace/serviceAccount` minted by the API server (TokenRequest), as the kubelet would project it. */
export async function mintToken(cluster: KubeCluster, namespace: string, serviceAccount: string, audiences: string[], expirationSeconds = 3600): Promise<string> {
  const res = await cluster.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { audiences, expirationSeconds },
  });
  if (res.status !== 201) throw new Error(`TokenRequest for ${namespace}/${serviceAccount}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.status.token;
}

/** Writes a projected-token file (one per audience, named as the webhook names it). */
export function writeProjectedToken(dir: string, audience: string, token: string): string {
  const path = join(dir, audience.replace(/[^A-Za-z0-9._-]/g, '_'));
  writeFileSync(path, token, { mode: 0o600 });
  return path;
}

export async function issuerOf(cluster: KubeCluster): Promise<{ issuer: string; jwks: Jwks }> {
  const discovery = await cluster.request<{ issuer: string }>('admin', 'GET', '/.well-known/openid-configuration');
  const jwks = await cluster.request<Jwks>('admin', 'GET', '/openid/v1/jwks');
  if (discovery.status !== 200 || jwks.status !== 200) throw new Error(`OIDC discovery failed: ${discovery.status}/${jwks.status}`);
  return { issuer: discovery.body.issuer, jwks: jwks.body };
}

export async function startStsWorld(cluster: KubeCluster, o: StsWorldOptions): Promise<StsWorld> {
  const moto = await Moto.start();
  try {
    const admin = await moto.createUser('admin', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
    const hopUser = await moto.createUser('sts-hop', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRoleWithWebIdentity', Resource: '*' }] });
    const roleArn = await moto.createRole('agent-role', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:*', 'sts:GetCallerIdentity'], Resource: '*' }] });
    await moto.createBucket(o.bucket, admin);
    await moto.enforceIam();
    const { issuer, jwks } = await issuerOf(cluster);
    const ca = await createTestCa('sluice test AWS CA');
    const names = awsNames(o.bucket);
    const hop = await VerifyingHop.start({
      ca,
      moto,
      names,
      jwks,
      issuer,
      audience: o.audience ?? 'sts.amazonaws.com',
      trust: { [roleArn]: [`system:serviceaccount:${o.namespace}:${o.serviceAccount}`] },
      hopUser,
      now: o.now,
      host: o.host,
    });
    const resolve: Record<string, string> = {};
    for (const n of names) resolve[n] = hop.dial;
    return {
      moto,
      hop,
      ca,
      admin,
      roleArn,
      issuer,
      resolve,
      async close() {
        await hop.close();
        await moto.stop();
      },
    };
  } catch (err) {
    await moto.stop();
    throw err;
  }
}
