// The one way sluice loads @peculiar/x509: its DI container (tsyringe) needs the Reflect
// metadata polyfill loaded first, and it needs Node's WebCrypto as its provider. Importing the
// library anywhere else risks loading it before either.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
