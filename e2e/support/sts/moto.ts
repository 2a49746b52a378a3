// moto (the AWS emulator, built by tools/install.sh into its own venv) as a test service on a free
// loopback port, plus the few IAM/S3 calls tests need to provision it: an admin user, the user the
// verifying hop acts as, roles with inline policies, buckets. Provisioning runs with moto's IAM
// checks off; `enforceIam()` then turns them on for every later call, so moto verifies each
// request's SigV4 signature (with botocore) and the caller's IAM permissions from then on.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, startProcess, stopProcess, waitReady } from '../kube/cluster.ts';
import { refSignHeaders } from './sigv4-reference.ts';
import type { RefCredentials } from './sigv4-reference.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
export const ACCOUNT_ID = '123456789012';

export class MotoHarnessError extends Error {
  readonly code: 'SLUICE_MOTO_MISSING' | 'SLUICE_MOTO_CALL_FAILED';
  constructor(code: MotoHarnessError['code'], message: string) {
    super(message);
    this.name = 'MotoHarnessError';
    this.code = code;
  }
}

/** .tools/bin/moto_server: tools/install.sh's wrapper runs moto through its venv's python. */
function motoCommand(): string {
  const command = join(ROOT, '.tools', 'bin', 'moto_server');
  if (!existsSync(command)) throw new MotoHarnessError('SLUICE_MOTO_MISSING', `${command} is missing: run \`make tools\` (tools/install.sh builds moto)`);
  return command;
}

export interface AwsUserKeys extends RefCredentials {
  arn: string;
}

export class Moto {
  readonly endpoint: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  #counter = 0;

  private constructor(endpoint: string, child: ChildProcess, dir: string) {
    this.endpoint = endpoint;
    this.#child = child;
    this.#dir = dir;
  }

  static async start(): Promise<Moto> {
    const command = motoCommand();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-moto-'));
    const log = join(dir, 'moto.log');
    const child = startProcess(command, ['-H', '127.0.0.1', '-p', String(port)], log);
    const endpoint = `http://127.0.0.1:${port}`;
    await waitReady('moto', child, log, 60_000, async () => {
      const res = await request(`${endpoint}/moto-api/`);
      await res.body.dump();
      return res.statusCode === 200;
    });
    return new Moto(endpoint, child, dir);
  }

  /** A query-protocol call (IAM, STS) signed with `creds` (any creds while IAM is not enforced). */
  async query(service: string, params: Record<string, string>, creds: RefCredentials = { accessKeyId: 'AKIASETUP0000000000', secretAccessKey: 'setup' }): Promise<string> {
    const body = Buffer.from(new URLSearchParams(params).toString());
    const host = `${service}.amazonaws.com`;
    const signed = refSignHeaders(
      { method: 'POST', path: '/', headers: { host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body },
      creds,
      'us-east-1',
      service,
      amzDate(),
    );
    const res = await request(`${this.endpoint}/`, { method: 'POST', headers: signed.headers, body });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new MotoHarnessError('SLUICE_MOTO_CALL_FAILED', `${service} ${params.Action}: ${res.statusCode} ${text.slice(0, 400)}`);
    return text;
  }

  /** An S3 REST call (path style on s3.amazonaws.com) signed with `creds`. */
  async s3(method: string, path: string, creds: RefCredentials, body?: Buffer): Promise<{ status: number; body: Buffer }> {
    const signed = refSignHeaders({ method, path, headers: { host: 's3.amazonaws.com' }, body }, creds, 'us-east-1', 's3', amzDate());
    const res = await request(`${this.endpoint}${path}`, { method: method as 'GET', headers: signed.headers, body: body ?? null });
    return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
  }

  async createUser(name: string, policy: object): Promise<AwsUserKeys> {
    await this.query('iam', { Action: 'CreateUser', UserName: name, Version: '2010-05-08' });
    await this.query('iam', { Action: 'PutUserPolicy', UserName: name, PolicyName: `${name}-policy`, PolicyDocument: JSON.stringify(policy), Version: '2010-05-08' });
    const xml = await this.query('iam', { Action: 'CreateAccessKey', UserName: name, Version: '2010-05-08' });
    return { accessKeyId: tag(xml, 'AccessKeyId'), secretAccessKey: tag(xml, 'SecretAccessKey'), arn: `arn:aws:iam::${ACCOUNT_ID}:user/${name}` };
  }

  /** A role for web identities with an inline permissions policy; returns its ARN. */
  async createRole(name: string, policy: object, issuerHost = 'kubernetes.default.svc.cluster.local'): Promise<string> {
    const trust = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Federated: `arn:aws:iam::${ACCOUNT_ID}:oidc-provider/${issuerHost}` }, Action: 'sts:AssumeRoleWithWebIdentity' }],
    };
    await this.query('iam', { Action: 'CreateRole', RoleName: name, AssumeRolePolicyDocument: JSON.stringify(trust), Version: '2010-05-08' });
    await this.query('iam', { Action: 'PutRolePolicy', RoleName: name, PolicyName: `${name}-policy`, PolicyDocument: JSON.stringify(policy), Version: '2010-05-08' });
    return `arn:aws:iam::${ACCOUNT_ID}:role/${name}`;
  }

  async createBucket(name: string, creds: RefCredentials): Promise<void> {
    const res = await this.s3('PUT', `/${name}`, creds);
    if (res.status !== 200) throw new MotoHarnessError('SLUICE_MOTO_CALL_FAILED', `CreateBucket ${name}: ${res.status} ${res.body.toString().slice(0, 300)}`);
  }

  /** From now on moto checks every request's signature and the caller's IAM policy. */
  async enforceIam(): Promise<void> {
    const res = await request(`${this.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    await res.body.dump();
    if (res.statusCode !== 200) throw new MotoHarnessError('SLUICE_MOTO_CALL_FAILED', `reset-auth: ${res.statusCode}`);
  }

  get log(): string {
    return join(this.#dir, 'moto.log');
  }

  nextId(): number {
    return ++this.#counter;
  }

  async stop(): Promise<void> {
    await stopProcess(this.#child, 5000);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

export function amzDate(at: number = Date.now()): string {
  return new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export function tag(xml: string, name: string): string {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  if (!m) throw new MotoHarnessError('SLUICE_MOTO_CALL_FAILED', `no <${name}> in ${xml.slice(0, 300)}`);
  return m[1]!;
}
