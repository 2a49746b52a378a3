export * from './labels.ts';
export * from './policy.ts';
export * from './organisation.ts';
export * from './sluice-policy.ts';
export * from './audit.ts';
export * from './approval.ts';
export * from './validation.ts';
export * from './json-schemas.ts';
