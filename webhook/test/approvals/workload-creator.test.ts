// The creator stamp of workloads as a pure plan (who the stamp is after a create or an update, and
// what a caller may not write), and whose ownerReferences count. Resolution against the API server
// (owner chains, agent pods, unreadable owners) runs against the real kube-apiserver in
// e2e/approvals/forgery.test.ts.
import { describe, expect, test } from '@jest/globals';
import { creatorStamp } from '../../src/creator.ts';
import { UNKNOWN_CREATOR_STAMP, controllerOwner, planWorkloadStamp, resolveCreator, stampUser } from '../../src/workload-creator.ts';
import type { WorkloadInput } from '../../src/workload-creator.ts';
import { CreatorsConfig } from '../../src/workload-creator.ts';

const carol = creatorStamp({ username: 'carol@example.com', uid: 'u-carol', groups: ['developers'] });
const alice = creatorStamp({ username: 'alice@example.com', groups: ['developers'] });
const KEY = 'sluice.io/creator';

const template = (image: string, annotations?: Record<string, string>) => ({ metadata: { labels: { app: 'a' }, ...(annotations ? { annotations } : {}) }, spec: { containers: [{ name: 'agent', image }] } });
const deployment = (image: string, stamp?: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'coder', ...(stamp ? { annotations: { [KEY]: stamp } } : {}) },
  spec: { replicas: 1, template: template(image), ...extra },
});

function plan(w: Partial<WorkloadInput> & Pick<WorkloadInput, 'object'>) {
  return planWorkloadStamp({ operation: 'CREATE', kind: 'Deployment', viaController: false, stamp: alice, ...w });
}

describe('planWorkloadStamp', () => {
  test('a create is stamped with its creator', () => {
    expect(plan({ object: deployment('a:1') })).toEqual({ violations: [], patch: [{ op: 'add', path: '/metadata/annotations', value: { [KEY]: alice } }] });
    expect(plan({ object: { ...deployment('a:1'), metadata: { name: 'coder', annotations: { team: 'x' } } } }).patch).toEqual([{ op: 'add', path: '/metadata/annotations/sluice.io~1creator', value: alice }]);
  });

  test('an update of the pod template re-stamps with whoever changed it; any other update keeps the stamp', () => {
    const before = deployment('a:1', carol);
    expect(plan({ operation: 'UPDATE', oldObject: before, object: deployment('a:2', carol) }).patch).toEqual([{ op: 'add', path: '/metadata/annotations/sluice.io~1creator', value: alice }]);
    expect(plan({ operation: 'UPDATE', oldObject: before, object: deployment('a:1', carol, { replicas: 3 }) })).toEqual({ violations: [], patch: [] });
    // kubectl apply/replace sends the stored stamp back: not a forgery.
    expect(plan({ operation: 'UPDATE', oldObject: before, object: deployment('a:2', carol) }).violations).toEqual([]);
    // An update that drops the annotation gets it back.
    expect(plan({ operation: 'UPDATE', oldObject: before, object: deployment('a:1') }).patch).toEqual([{ op: 'add', path: '/metadata/annotations', value: { [KEY]: carol } }]);
  });

  test('a caller writing the stamp is refused, on create and on update', () => {
    expect(plan({ object: deployment('a:1', carol) }).violations.map((v) => v.rule)).toEqual(['creator.forged']);
    expect(plan({ operation: 'UPDATE', oldObject: deployment('a:1', carol), object: deployment('a:1', alice) }).violations.map((v) => v.rule)).toEqual(['creator.forged']);
    // Writing exactly what sluice would write is harmless.
    expect(plan({ object: deployment('a:1', alice) }).violations).toEqual([]);
  });

  test('a pod template may not carry the stamp (a CronJob’s job template neither)', () => {
    const forged = { ...deployment('a:1'), spec: { template: template('a:1', { [KEY]: carol }) } };
    expect(plan({ object: forged }).violations.map((v) => v.field)).toEqual(['spec.template.metadata.annotations[sluice.io/creator]']);
    const cron = { kind: 'CronJob', metadata: { name: 'n' }, spec: { jobTemplate: { metadata: { annotations: { [KEY]: carol } }, spec: { template: template('a:1', { [KEY]: carol }) } } } };
    expect(plan({ kind: 'CronJob', object: cron }).violations.map((v) => v.field)).toEqual([
      'spec.jobTemplate.spec.template.metadata.annotations[sluice.io/creator]',
      'spec.jobTemplate.metadata.annotations[sluice.io/creator]',
    ]);
  });

  test('a CronJob’s template is one level deeper: changing it re-stamps', () => {
    const cron = (image: string) => ({ kind: 'CronJob', metadata: { name: 'n', annotations: { [KEY]: carol } }, spec: { schedule: '* * * * *', jobTemplate: { spec: { template: template(image) } } } });
    expect(plan({ kind: 'CronJob', operation: 'UPDATE', oldObject: cron('a:1'), object: cron('a:2') }).patch[0]?.value).toBe(alice);
    expect(plan({ kind: 'CronJob', operation: 'UPDATE', oldObject: cron('a:1'), object: { ...cron('a:1'), spec: { ...cron('a:1').spec, schedule: '0 3 * * *' } } }).patch).toEqual([]);
  });

  test('a controller writing for its owner passes the owner’s stamp on, over whatever it copied', () => {
    const rs = { kind: 'ReplicaSet', metadata: { name: 'coder-1', annotations: { [KEY]: alice } }, spec: { template: template('a:1') } };
    expect(planWorkloadStamp({ operation: 'CREATE', kind: 'ReplicaSet', object: rs, viaController: true, stamp: carol })).toEqual({
      violations: [],
      patch: [{ op: 'add', path: '/metadata/annotations/sluice.io~1creator', value: carol }],
    });
  });

  test('a controller’s update that leaves the template alone keeps the stamp (no laundering by adoption)', () => {
    // alice made this ReplicaSet herself; carol's Deployment adopts and scales it.
    const rs = { kind: 'ReplicaSet', metadata: { name: 'mine', annotations: { [KEY]: alice } }, spec: { replicas: 3, template: template('evil:1') } };
    const scaled = { ...rs, spec: { ...rs.spec, replicas: 0 } };
    expect(planWorkloadStamp({ operation: 'UPDATE', kind: 'ReplicaSet', oldObject: rs, object: scaled, viaController: true, stamp: carol })).toEqual({ violations: [], patch: [] });
    // An unstamped (pre-sluice) ReplicaSet takes its owner's stamp on the controller's next write.
    const bare = { ...rs, metadata: { name: 'old' } };
    expect(planWorkloadStamp({ operation: 'UPDATE', kind: 'ReplicaSet', oldObject: bare, object: bare, viaController: true, stamp: UNKNOWN_CREATOR_STAMP }).patch).toEqual([{ op: 'add', path: '/metadata/annotations', value: { [KEY]: UNKNOWN_CREATOR_STAMP } }]);
  });
});

describe('whose ownerReferences count', () => {
  const ref = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'coder-1', uid: 'u-1', controller: true };
  test('only a controller reference to a kind that passes stamps on, with its real apiVersion', () => {
    expect(controllerOwner([ref])).toBe(ref);
    expect(controllerOwner([{ ...ref, controller: false }])).toBeUndefined();
    expect(controllerOwner([{ ...ref, kind: 'Rollout', apiVersion: 'argoproj.io/v1alpha1' }])).toBeUndefined();
    expect(controllerOwner([{ ...ref, apiVersion: 'example.com/v1' }])).toBeUndefined();
    expect(controllerOwner([{ ...ref, uid: undefined }])).toBeUndefined();
  });

  test('a caller who is no controller is its own creator whatever it names as owner, without any read', async () => {
    const config = CreatorsConfig.parse({});
    const r = await resolveCreator({ username: 'alice@example.com', groups: ['developers'] }, 'agents', [ref], config, undefined);
    expect(r).toEqual({ kind: 'stamp', stamp: alice, via: 'user' });
  });

  test('a controller’s object with an owner, and no API access, is refused (fail closed)', async () => {
    const r = await resolveCreator({ username: 'system:serviceaccount:kube-system:replicaset-controller', groups: [] }, 'agents', [ref], CreatorsConfig.parse({}), undefined);
    expect(r).toMatchObject({ kind: 'refuse', violation: { rule: 'creator.unresolved' } });
  });

  test('the unknown-creator stamp stands for nobody', () => {
    expect(stampUser(UNKNOWN_CREATOR_STAMP)).toEqual({ username: 'sluice:unknown-creator', uid: undefined, groups: [] });
  });
});
