// The organisation model: what belongs to the organisation that runs the agents (its git owners
// and repositories, AWS accounts, buckets and roles, Kubernetes namespaces, registries, LLM
// providers, allowed ports) and per-namespace additions. The default Rego library reads it as
// `data.organisation` to tell own resources from foreign ones; `opa check --strict` types the
// library against its JSON Schema (api/schemas/organisation.json). It is one plain JSON object so
// that it can be carried as-is in a cluster-scoped custom resource. It must hold names and
// patterns only, never a secret value (credentials are named, the sidecar holds them).
import { z } from 'zod';

/** An exact lower-case host name or `*.suffix` (any subdomain, never the bare suffix), as lib.host_matches. */
export const HostPattern = z
  .string()
  .regex(/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'a lower-case host name or *.suffix');

/** An exact name, `prefix*` (any name starting with prefix) or `*` (any name), as lib.name_matches. */
export const NamePattern = z
  .string()
  .regex(/^[^*\s]*\*?$/, 'a name, prefix* or *')
  .min(1);

const AwsAccountId = z.string().regex(/^\d{12}$/, 'a 12-digit AWS account id');
const Port = z.number().int().min(1).max(65535);
/** `host/owner` (a user, organisation or top-level group on that forge). */
const GitOwner = z.string().regex(/^[a-z0-9.-]+\/[^/\s]+$/, 'host/owner');
/** `host/owner/repo` (GitLab subgroups: `host/group/sub/repo`). */
const GitRepo = z.string().regex(/^[a-z0-9.-]+\/[^/\s]+(\/[^/\s]+)+$/, 'host/owner/repo');
const PathPrefix = z.string().regex(/^\/\S*$/, 'a path prefix starting with /');

export const GitForge = z
  .object({
    host: HostPattern.describe('the forge web and git host, e.g. github.com'),
    kind: z.enum(['github', 'gitlab', 'bitbucket', 'gitea', 'generic']).describe('how its API paths name repositories'),
    api_hosts: z.array(HostPattern).default([]).describe('its REST/GraphQL API hosts, e.g. api.github.com'),
  })
  .strict();

export const OwnRegistry = z
  .object({
    host: HostPattern,
    path_prefixes: z
      .array(PathPrefix)
      .default([])
      .describe('the organisation’s namespace on a shared registry (e.g. /v2/acme/ on ghcr.io, /@acme on npm); empty: the whole host'),
  })
  .strict();

export const LlmProvider = z
  .object({
    name: z.string().regex(/^[a-z0-9_-]+$/),
    hosts: z.array(HostPattern).min(1),
    models: z.array(NamePattern).default(['*']).describe('models agents may call (name, prefix* or *)'),
    key_header: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('authorization')
      .describe('the header that carries the API key (authorization, x-api-key, api-key)'),
    credential: z
      .object({ provider: z.string() })
      .catchall(z.union([z.string(), z.number(), z.boolean()]))
      .optional()
      .describe('credential the sidecar injects into key_header (e.g. {"provider": "static-secret", "secret": "openai"}); absent: requests that bring their own key are refused'),
  })
  .strict();

/**
 * The account that owns own buckets matching `bucket` (an exact name or a pattern). Bucket names
 * are global, so S3 is asked to check the owner of every own bucket; without an entry that is the
 * account of the credentials the sidecar signs with. An exact name wins over patterns, a longer
 * pattern over a shorter one.
 */
const BucketAccount = z.object({ bucket: NamePattern, account: AwsAccountId }).strict();

/** Additions for one namespace; every list is appended to the organisation-wide list. */
export const NamespaceOverride = z
  .object({
    git: z.object({ owners: z.array(GitOwner).optional(), repos: z.array(GitRepo).optional() }).strict().optional(),
    aws: z
      .object({
        accounts: z.array(AwsAccountId).optional(),
        regions: z.array(z.string()).optional(),
        services: z.array(z.string()).optional(),
        endpoints: z.array(HostPattern).optional(),
        buckets: z.array(NamePattern).optional(),
        readable_buckets: z.array(NamePattern).optional(),
        anonymous_buckets: z.array(NamePattern).optional(),
        roles: z.array(NamePattern).optional(),
        bucket_accounts: z.array(BucketAccount).optional(),
      })
      .strict()
      .optional(),
    kubernetes: z.object({ namespaces: z.array(NamePattern).optional() }).strict().optional(),
    registries: z
      .object({
        read: z.array(HostPattern).optional(),
        images: z.array(HostPattern).optional(),
        go_module_hosts: z.array(HostPattern).optional(),
        own: z.array(OwnRegistry).optional(),
      })
      .strict()
      .optional(),
    llm: z.object({ models: z.array(NamePattern).optional() }).strict().optional(),
    network: z
      .object({ ports: z.object({ https: z.array(Port).optional(), http: z.array(Port).optional() }).strict().optional() })
      .strict()
      .optional(),
  })
  .strict();

export const Organisation = z
  .object({
    name: z.string().min(1).describe('shown in reasons, e.g. "acme"'),
    git: z
      .object({
        forges: z.array(GitForge).describe('git hosts agents may fetch from'),
        owners: z.array(GitOwner).describe('owners whose repositories are the organisation’s: pushes there are held, elsewhere denied'),
        repos: z.array(GitRepo).default([]).describe('single repositories of other owners that count as the organisation’s'),
      })
      .strict(),
    aws: z
      .object({
        host_suffixes: z.array(z.string()).default(['amazonaws.com']),
        accounts: z.array(AwsAccountId).describe('the organisation’s accounts: AssumeRole into any other is denied'),
        regions: z.array(z.string()).describe('regions agents may call; empty: any'),
        services: z.array(z.string()).describe('IAM service prefixes agents may call (s3, sts, ec2, …); others are denied'),
        endpoints: z.array(HostPattern).default([]).describe('individual AWS hosts allowed besides services (execute-api, …)'),
        buckets: z.array(NamePattern).describe('the organisation’s buckets: writes anywhere else are denied'),
        readable_buckets: z.array(NamePattern).default([]).describe('foreign buckets agents may read (* for any)'),
        anonymous_buckets: z.array(NamePattern).default([]).describe('buckets agents may read unsigned (public data)'),
        roles: z.array(NamePattern).default([]).describe('role ARNs in own accounts agents may assume without approval; others in own accounts are held'),
        bucket_accounts: z
          .array(BucketAccount)
          .default([])
          .describe('which account owns own buckets, for S3’s owner check (x-amz-expected-bucket-owner); a bucket matching none is expected in the signing role’s account'),
        iam_writes: z.enum(['deny', 'hold']).default('deny').describe('what happens to IAM calls that change identities or policies'),
      })
      .strict(),
    kubernetes: z
      .object({
        api_servers: z.array(HostPattern).describe('names of the Kubernetes API server'),
        namespaces: z.array(NamePattern).describe('namespaces agents may address besides their own (* for any)'),
      })
      .strict(),
    registries: z
      .object({
        read: z.array(HostPattern).describe('package registries agents may read (npm, PyPI, crates, Maven, RubyGems, …)'),
        images: z.array(HostPattern).describe('container image registries and their token and blob hosts'),
        go_proxies: z.array(HostPattern).default(['proxy.golang.org', 'sum.golang.org']).describe('Go module proxies and checksum databases'),
        go_module_hosts: z.array(HostPattern).default([]).describe('module path hosts a Go proxy may be asked for, besides the git forges'),
        own: z.array(OwnRegistry).default([]).describe('where the organisation publishes: pushes there are held, elsewhere denied'),
      })
      .strict(),
    llm: z.object({ providers: z.array(LlmProvider) }).strict(),
    network: z
      .object({
        ports: z
          .object({
            https: z.array(Port).default([443]),
            http: z.array(Port).default([80]),
          })
          .strict()
          .describe('destination ports by scheme; a CONNECT may use either list'),
      })
      .strict(),
    namespaces: z.record(z.string(), NamespaceOverride).default({}).describe('additions per agent namespace'),
  })
  .strict();

export type HostPattern = z.infer<typeof HostPattern>;
export type GitForge = z.infer<typeof GitForge>;
export type OwnRegistry = z.infer<typeof OwnRegistry>;
export type LlmProvider = z.infer<typeof LlmProvider>;
export type NamespaceOverride = z.infer<typeof NamespaceOverride>;
export type Organisation = z.infer<typeof Organisation>;
/** The organisation as written (defaults not yet applied), e.g. in a custom resource. */
export type OrganisationInput = z.input<typeof Organisation>;
