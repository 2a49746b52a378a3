// Shared fixtures for the audit recorder's tests: a fresh spool directory per test (removed after
// it) and a plain allowed request record. Tests only; never imported by sidecar/src.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from '@jest/globals';
import type { AuditRecord } from '../../../api/src/index.ts';

/** A new temporary directory for each test of the file; `dir()` is the current one. */
export function spoolDirPerTest(prefix: string): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

export const pod = { namespace: 'agents', name: 'agent-1' };

/** The i-th allowed registry read, as the proxy records a request. */
export function requestRecord(i: number): AuditRecord {
  return {
    kind: 'request',
    pod,
    request_id: `r-${i}`,
    request: { method: 'GET', scheme: 'https', host: 'registry.npmjs.org', port: 443, path: `/pkg-${i}` },
    decision: { action: 'allow', code: 'registry.read', reason: 'package registries are read-only' },
  };
}
