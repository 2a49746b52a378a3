// Runs real clients (aws, curl) as the agent: asynchronously (the sidecar shares this process's
// event loop), with the environment the webhook gives agent containers, and keeps everything the
// agent received (stdout, stderr) so a test can search it for credentials afterwards.
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
export const AWS_CLI = join(ROOT, '.tools', 'bin', 'aws');

export interface AgentRun {
  code: number;
  stdout: string;
  stderr: string;
}

export class Agent {
  /** Everything the agent saw, for the no-secret proof. */
  readonly transcript: string[] = [];
  readonly home: string;
  readonly env: Record<string, string>;

  constructor(env: Record<string, string>) {
    this.home = mkdtempSync(join(tmpdir(), 'sluice-agent-'));
    mkdirSync(join(this.home, '.aws'));
    this.env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: this.home,
      AWS_CONFIG_FILE: join(this.home, '.aws', 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(this.home, '.aws', 'credentials'),
      AWS_ACCESS_KEY_ID: 'SLUICEPLACEHOLDER',
      AWS_SECRET_ACCESS_KEY: 'sluice-placeholder',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
      ...env,
    };
  }

  run(cmd: string, args: string[], extraEnv: Record<string, string> = {}, input?: string): Promise<AgentRun> {
    return new Promise((resolve) => {
      const child = execFile(cmd, args, { env: { ...this.env, ...extraEnv }, cwd: this.home, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        this.transcript.push(stdout, stderr);
        resolve({ code, stdout, stderr });
      });
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  aws(args: string[], extraEnv: Record<string, string> = {}): Promise<AgentRun> {
    return this.run(AWS_CLI, args, extraEnv);
  }
}
