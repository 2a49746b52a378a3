// Jest runs the TypeScript sources as native ESM (node --experimental-vm-modules), transformed by
// swc, so tests exercise the same modules the sidecar runs. Projects split fast unit/golden tests
// from the e2e suites that start real components (those need root for network namespaces).
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2024' }, module: { type: 'es6' } }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
};
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{api,webhook,sidecar,cni,cli,policies,charts,bench,tools}/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/e2e/**/*.test.ts'],
    },
  ],
};
