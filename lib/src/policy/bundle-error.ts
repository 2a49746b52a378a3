// The one error type of bundle loading: a stable code (audit events, metrics labels, tests) and a
// message for people. Nothing here decides anything. Its codes are the catalogue's bundle.* rows.
import type { AreaCode } from '../../../api/src/codes.ts';

export class BundleError extends Error {
  readonly code: AreaCode<'bundle'>;
  constructor(code: AreaCode<'bundle'>, message: string) {
    super(message);
    this.name = 'BundleError';
    this.code = code;
  }
}
