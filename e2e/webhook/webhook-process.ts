// Runs the real webhook entry point (node webhook/src/main.ts) as a child process for e2e tests:
// writes its config and serving certificate (none in certificate mode "self": it makes its own) into a temp dir, waits for its "listening" log line,
// and stops it with SIGTERM like the kubelet would.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestCA } from '../support/kube/pki.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'webhook', 'src', 'main.ts');

export interface WebhookProcess {
  port: number;
  metricsPort: number;
  baseUrl: string;
  tlsDir: string;
  /** Every log line so far (pino JSON), for assertions and diagnosis. */
  logs: string[];
  stop(): Promise<void>;
}

/** `logs`: where log lines go from the first one on, for a test that watches a start-up in progress. */
export async function startWebhookProcess(ca: TestCA, config: Record<string, unknown>, timeoutMs = 15_000, logs: string[] = []): Promise<WebhookProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-webhook-'));
  const tlsDir = join(dir, 'tls');
  mkdirSync(tlsDir);
  // Certificate mode "self" (config.selfCert): the webhook writes its own pair into tlsDir.
  if (!config.selfCert) {
    const cert = await ca.issue('sluice-webhook', ['127.0.0.1', 'localhost', 'sluice-webhook.sluice-system.svc']);
    writeFileSync(join(tlsDir, 'tls.crt'), cert.certPem);
    writeFileSync(join(tlsDir, 'tls.key'), cert.keyPem, { mode: 0o600 });
  }
  const configPath = join(dir, 'config.yaml');
  // A test may fix the port (a registration must name it before the process starts); tlsDir is always ours.
  const server = { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, ...(config.server as Record<string, unknown> | undefined), tlsDir };
  writeFileSync(configPath, JSON.stringify({ ...config, server }));
  const child: ChildProcess = spawn(process.execPath, [MAIN, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stderr! }).on('line', (l) => logs.push(l));
  const listening = new Promise<{ port: number; metricsPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhook did not start in ${timeoutMs} ms:\n${logs.join('\n')}`)), timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; metricsPort?: number };
        if (entry.msg === 'listening' && entry.port && entry.metricsPort) {
          clearTimeout(timer);
          resolve({ port: entry.port, metricsPort: entry.metricsPort });
        }
      } catch {
        // not a log line of ours
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`webhook exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  let ports: { port: number; metricsPort: number };
  try {
    ports = await listening;
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...ports,
    baseUrl: `https://127.0.0.1:${ports.port}`,
    tlsDir,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
