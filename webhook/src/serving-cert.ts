// Keeps the HTTPS server on the serving certificate in its mounted Secret directory, swapping it
// in without a restart when the kubelet (or cert-manager) updates the Secret. A Secret volume is
// updated by an atomic rename of its ..data symlink, which a directory watch sees; a slow poll
// backs the watch up. A pair that does not load (key does not match, half-written file) is
// refused and the server keeps the certificate it has: it must never serve without one.
import { createHash, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';

export interface ServingCert {
  cert: Buffer;
  key: Buffer;
  notAfter: Date;
  fingerprint: string;
}

export class ServingCertError extends Error {
  readonly code = 'SLUICE_WEBHOOK_CERT_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ServingCertError';
  }
}

export interface CertFiles {
  dir: string;
  certFile: string;
  keyFile: string;
}

/** Reads and checks a certificate/key pair; throws ServingCertError saying what is wrong. */
export async function loadServingCert(files: CertFiles): Promise<ServingCert> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([readFile(join(files.dir, files.certFile)), readFile(join(files.dir, files.keyFile))]);
  } catch (err) {
    throw new ServingCertError(`cannot read serving certificate from ${files.dir}: ${(err as Error).message}`);
  }
  let leaf: X509Certificate;
  try {
    createSecureContext({ cert, key }); // throws when the key does not belong to the certificate
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new ServingCertError(`serving certificate in ${files.dir} does not load: ${(err as Error).message}`);
  }
  return { cert, key, notAfter: new Date(leaf.validTo), fingerprint: createHash('sha256').update(cert).update(key).digest('hex') };
}

export interface ReloaderOptions extends CertFiles {
  /** Called with each new, valid pair (not for an unchanged one). */
  onLoad(cert: ServingCert): void;
  onError(err: ServingCertError): void;
  debounceMs?: number;
  pollIntervalMs?: number;
}

/** Emits 'load' (ServingCert) after each swap and 'refused' (ServingCertError) for a pair it kept out. */
export class ServingCertReloader extends EventEmitter<{ load: [ServingCert]; refused: [ServingCertError] }> {
  readonly #options: ReloaderOptions;
  #current: ServingCert | undefined;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reloading: Promise<void> = Promise.resolve();

  constructor(options: ReloaderOptions) {
    super();
    this.#options = options;
  }

  get current(): ServingCert | undefined {
    return this.#current;
  }

  /** First load: throws when there is no usable pair (start-up must fail, not serve without TLS). */
  async start(): Promise<ServingCert> {
    const first = await loadServingCert(this.#options);
    this.#current = first;
    this.#options.onLoad(first);
    this.#watcher = watch(this.#options.dir, () => this.#schedule());
    this.#watcher.on('error', () => undefined); // the poll keeps working if the directory goes away
    this.#poll = setInterval(() => this.#schedule(), this.#options.pollIntervalMs ?? 30_000);
    this.#poll.unref();
    return first;
  }

  /** Re-reads the pair now; resolves once it has been swapped in or refused. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      try {
        const next = await loadServingCert(this.#options);
        if (next.fingerprint === this.#current?.fingerprint) return;
        this.#current = next;
        this.#options.onLoad(next);
        this.emit('load', next);
      } catch (err) {
        const refused = err instanceof ServingCertError ? err : new ServingCertError(String(err));
        this.#options.onError(refused);
        this.emit('refused', refused);
      }
    });
    return this.#reloading;
  }

  #schedule(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload(), this.#options.debounceMs ?? 200);
    this.#debounce.unref();
  }

  stop(): void {
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }
}
