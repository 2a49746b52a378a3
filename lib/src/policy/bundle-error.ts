// The one error type of bundle loading: a stable code (audit events, metrics labels, tests) and a
// message for people. Nothing here decides anything.
export class BundleError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'BundleError';
    this.code = code;
  }
}
