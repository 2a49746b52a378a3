// Takes bundle archives that arrive over the network (a ConfigMap read from the API server, an OCI
// layer) into the engine: every offer is verified against the configured signing key before
// anything in it is parsed or compiled, then compiled and swapped in whole. A refused offer is
// reported once per distinct archive (its SHA-256), and the last good bundle stays in service;
// without a good one the engine has none, so every request is denied and the sidecar is not ready.
// A remote source is never trusted unsigned: constructing one without a key is a configuration
// error. It never reads the network itself and never falls back to the built-in library.
import { createHash } from 'node:crypto';
import { SchemaError } from '../../../api/src/index.ts';
import { BundleError, readBundleBytes } from '../../../lib/src/policy/bundle.ts';
import type { BundleVerification } from '../../../lib/src/policy/bundle-signature.ts';
import { compileBundle } from '../../../lib/src/policy/engine.ts';
import type { LoadedBundle, PolicyEngine } from '../../../lib/src/policy/engine.ts';

/** Where an archive came from, for the audit event and the log. */
export interface RemoteOrigin {
  /** e.g. configmap sluice-system/sluice-policy-bundle, oci registry.example/policy@sha256:… */
  source: string;
  /** The object's resourceVersion, or the manifest digest. */
  version: string;
  /** sha256:<hex> of the archive bytes. */
  digest: string;
}

export interface RemoteBundleEvents {
  loaded(meta: LoadedBundle, origin: RemoteOrigin): void;
  failed(error: BundleError, origin: RemoteOrigin | undefined): void;
}

export function archiveDigest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Refuses a remote source without a signing key: an unsigned network bundle is never loaded. */
export function requireVerification(v: BundleVerification | undefined, what: string): BundleVerification {
  if (!v) throw new SchemaError('invalid sidecar configuration', [`policy.verification: required with ${what} (a bundle read from the cluster or a registry must be signed; set sidecar.config.policy.verification)`]);
  return v;
}

type Offer = { kind: 'archive'; bytes: Uint8Array; origin: Omit<RemoteOrigin, 'digest'> } | { kind: 'absent'; error: BundleError; key: string };

export class RemoteBundleInstaller {
  readonly #engine: PolicyEngine;
  readonly #verification: BundleVerification;
  readonly #events: RemoteBundleEvents;
  /** The last archive handled, good or refused: the same one is not handled twice. */
  #lastKey = '';
  /** The last problem reported without an archive (deleted, unreachable): reported once until an archive comes. */
  #lastProblem = '';
  #good: RemoteOrigin | undefined;
  #pending: Offer | undefined;
  #running: Promise<void> | undefined;

  constructor(engine: PolicyEngine, verification: BundleVerification, events: RemoteBundleEvents) {
    this.#engine = engine;
    this.#verification = verification;
    this.#events = events;
  }

  /** The origin of the bundle in service, if any. */
  get current(): RemoteOrigin | undefined {
    return this.#good;
  }

  /** A new archive; resolves once it (or a newer one offered meanwhile) was handled. */
  offer(bytes: Uint8Array, origin: Omit<RemoteOrigin, 'digest'>): Promise<void> {
    return this.#enqueue({ kind: 'archive', bytes, origin });
  }

  /**
   * The source gave no archive (object deleted, key missing, registry unreachable): recorded once
   * per distinct problem; the last good bundle stays in service.
   */
  absent(error: BundleError): Promise<void> {
    return this.#enqueue({ kind: 'absent', error, key: `${error.code}:${error.message}` });
  }

  /** Only the newest pending offer matters: a burst of updates compiles at most twice. */
  #enqueue(offer: Offer): Promise<void> {
    this.#pending = offer;
    this.#running ??= (async () => {
      try {
        while (this.#pending) {
          const next = this.#pending;
          this.#pending = undefined;
          await this.#handle(next);
        }
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async #handle(offer: Offer): Promise<void> {
    if (offer.kind === 'absent') {
      if (offer.key === this.#lastProblem) return;
      this.#lastProblem = offer.key;
      this.#events.failed(offer.error, undefined);
      return;
    }
    this.#lastProblem = '';
    const origin: RemoteOrigin = { ...offer.origin, digest: archiveDigest(offer.bytes) };
    if (origin.digest === this.#lastKey) return;
    this.#lastKey = origin.digest;
    try {
      const bundle = await readBundleBytes(offer.bytes, origin.source, { verification: this.#verification });
      const compiled = await compileBundle(bundle);
      this.#engine.install(compiled);
      this.#good = origin;
      this.#events.loaded(compiled.meta, origin);
    } catch (err) {
      const error = err instanceof BundleError ? err : new BundleError('bundle.unreadable', `${origin.source}: ${String(err)}`);
      this.#events.failed(error, origin);
    }
  }
}

/** What every remote source reports, as the file watcher does: a metric, a policy_load audit event, a log line. */
export function remoteBundleEvents(
  engine: PolicyEngine,
  metrics: { loaded(revision: string): void; failed(code: string): void },
  note: (kind: 'policy_load', detail: Record<string, unknown>) => void,
  log: { info(o: object, m: string): void; error(o: object, m: string): void },
): RemoteBundleEvents {
  return {
    loaded(meta, origin) {
      metrics.loaded(meta.revision);
      note('policy_load', {
        result: 'loaded',
        revision: meta.revision,
        source: origin.source,
        version: origin.version,
        digest: origin.digest,
        ...(meta.signature ? { signed: { key_id: meta.signature.keyId, algorithm: meta.signature.algorithm } } : {}),
      });
      log.info({ revision: meta.revision, source: origin.source, version: origin.version, digest: origin.digest }, 'policy bundle loaded');
    },
    failed(error, origin) {
      metrics.failed(error.code);
      const keeping = engine.revision || null;
      note('policy_load', { result: 'rejected', code: error.code, reason: error.message, keeping, ...(origin ? { source: origin.source, version: origin.version, digest: origin.digest } : {}) });
      log.error({ code: error.code, err: error.message, keeping, ...(origin ? { source: origin.source, version: origin.version } : {}) }, 'policy bundle rejected');
    },
  };
}
