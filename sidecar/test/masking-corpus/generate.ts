// Generates the labelled masking corpus: fake-but-valid-format secrets in realistic surroundings
// (positives.jsonl) and close look-alikes that must not be masked (negatives.jsonl). Deterministic:
// a seeded PRNG, so re-running rewrites the same files. No real credential is in here; every secret
// is random bytes in the right shape (checksums computed where the format has one).
//
//   node sidecar/test/masking-corpus/generate.ts          # rewrites the .jsonl files beside it (and the encoded-*.jsonl of encoded.ts)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { base62Crc32 } from '../../src/masking/validators.ts';
import { prng } from '../../../testkit/prng.ts';

export interface Positive {
  id: string;
  rule: string;
  context: string;
  text: string;
  /** Values that must not survive masking, in whole or in any 12-byte piece. */
  secrets: string[];
}

export interface Negative {
  id: string;
  kind: string;
  text: string;
}

export { prng };

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const B62 = DIGITS + UPPER + LOWER;
const B64 = UPPER + LOWER + DIGITS + '+/';
const B64URL = UPPER + LOWER + DIGITS + '-_';
const HEX = '0123456789abcdef';
const B32 = UPPER + '234567';

class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = prng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)] as T;
  }
  str(alphabet: string, n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet.charAt(Math.floor(this.r() * alphabet.length));
    return s;
  }
  /** Random string from `alphabet` that has an upper, a lower and a digit (as real keys do). */
  mixed(alphabet: string, n: number): string {
    for (;;) {
      const s = this.str(alphabet, n);
      if (/[A-Z]/.test(s) && /[a-z]/.test(s) && /[0-9]/.test(s)) return s;
    }
  }
  uuid(): string {
    const h = this.str(HEX, 32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${this.pick(['8', '9', 'a', 'b'])}${h.slice(17, 20)}-${h.slice(20)}`;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.r() * 256);
    return b;
  }
  word(): string {
    return this.pick(WORDS);
  }
  sentence(n = this.int(6, 14)): string {
    const w: string[] = [];
    for (let i = 0; i < n; i++) w.push(this.word());
    const s = w.join(' ');
    return s.charAt(0).toUpperCase() + s.slice(1) + '.';
  }
  ts(): string {
    return `2025-0${this.int(1, 9)}-1${this.int(0, 9)}T${String(this.int(10, 23))}:${String(this.int(10, 59))}:${String(this.int(10, 59))}.${String(this.int(100, 999))}Z`;
  }
  host(): string {
    return `${this.pick(['api', 'db', 'cache', 'queue', 'auth', 'git', 'build'])}-${this.int(1, 9)}.${this.pick(['internal', 'prod.example.net', 'corp.local', 'svc.cluster.local'])}`;
  }
  password(): string {
    const w = this.pick(['Winter', 'Summer', 'Dragon', 'Falcon', 'Rocket', 'Harbor', 'Copper', 'Meadow', 'Tiger', 'Orbit']);
    const sym = this.pick(['!', '@', '#', '$', '%', '&', '*', '?', '-', '_', '+']);
    return this.pick([
      () => `${w}${this.int(1990, 2030)}${sym}`,
      () => `${this.str(B62, this.int(10, 18))}${sym}${this.int(10, 99)}`,
      () => `${w.toLowerCase()}${sym}${this.str(LOWER, 4)}${this.int(100, 999)}`,
      () => this.mixed(B62, this.int(12, 24)),
      () => `${this.str(UPPER, 2)}${this.str(LOWER, 5)}${sym}${this.str(DIGITS, 3)}${this.str(LOWER, 3)}`,
    ])();
  }
}

const WORDS =
  'the a service request deploy cluster node pod image build release version config value update change user team project repository branch commit merge review test pipeline job step cache queue worker event metric alert dashboard region zone bucket object policy role network route gateway proxy client server session response status error retry timeout limit quota token budget model prompt context window output input file path directory module package dependency install upgrade rollback schedule backup restore snapshot volume disk memory cpu latency throughput availability incident ticket owner reviewer approval audit log trace span handler controller reconcile watch informer'.split(
    ' ',
  );

// ---------------------------------------------------------------------------------------------
// Secret makers: each returns the secret and a name it is typically stored under.

interface Made {
  value: string;
  names: string[];
  /** Substrings that must disappear (default: [value]). */
  secrets?: string[];
}

function ghToken(g: Gen, prefix: string): string {
  const body = g.str(B62, 30);
  return `${prefix}_${body}${base62Crc32(body)}`;
}

function pemBody(g: Gen, bytes: number, nl = '\n'): string {
  const b64 = g.bytes(bytes).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return lines.join(nl);
}

function pem(g: Gen, kind: string, nl = '\n'): { text: string; body: string } {
  const body = kind === 'OPENSSH ' ? 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ' + pemBody(g, 380, nl).slice(42) : pemBody(g, kind === 'EC ' ? 121 : 1190, nl);
  const label = kind === 'PGP ' ? 'PGP PRIVATE KEY BLOCK' : `${kind}PRIVATE KEY`;
  const header = kind === 'ENCRYPTED-RSA ' ? `Proc-Type: 4,ENCRYPTED${nl}DEK-Info: AES-128-CBC,${g.str(HEX, 32).toUpperCase()}${nl}${nl}` : kind === 'PGP ' ? `Version: GnuPG v2${nl}${nl}` : '';
  const realLabel = kind === 'ENCRYPTED-RSA ' ? 'RSA PRIVATE KEY' : label;
  return { text: `-----BEGIN ${realLabel}-----${nl}${header}${body}${nl}-----END ${realLabel}-----`, body };
}

function jwt(g: Gen): string {
  const header = g.pick([
    { alg: 'HS256', typ: 'JWT' },
    { alg: 'RS256', typ: 'JWT', kid: g.str(B64URL, 20) },
    { alg: 'ES256', kid: g.uuid() },
  ]);
  const payload = {
    iss: g.pick(['https://kubernetes.default.svc.cluster.local', 'https://accounts.example.com', 'https://token.actions.githubusercontent.com']),
    sub: g.pick([`system:serviceaccount:${g.word()}:${g.word()}`, g.uuid(), `user-${g.int(1000, 99999)}`]),
    aud: g.pick(['sluice', 'api', 'https://sts.amazonaws.com']),
    iat: g.int(1700000000, 1760000000),
    exp: g.int(1760000000, 1790000000),
  };
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const sigLen = header.alg === 'HS256' ? 43 : header.alg === 'ES256' ? 86 : 342;
  return `${enc(header)}.${enc(payload)}.${g.str(B64URL, sigLen)}`;
}

const MAKERS: Record<string, (g: Gen) => Made> = {
  'aws-key-pair': (g) => {
    const id = `${g.pick(['AKIA', 'ASIA'])}${g.str(B32, 16)}`;
    const secret = g.mixed(B64, 40);
    return { value: `${id},${secret}`, names: ['credentials'], secrets: [id, secret] };
  },
  'aws-secret-access-key': (g) => ({ value: g.mixed(B64, 40), names: ['aws_secret_access_key', 'AWS_SECRET_ACCESS_KEY', 'SecretAccessKey', 'secretAccessKey'] }),
  'aws-access-key-id': (g) => ({ value: `${g.pick(['AKIA', 'ASIA'])}${g.str(B32, 16)}`, names: ['aws_access_key_id', 'AWS_ACCESS_KEY_ID', 'AccessKeyId', 'accessKeyId'] }),
  'github-pat-classic': (g) => ({ value: ghToken(g, 'ghp'), names: ['GITHUB_TOKEN', 'GH_TOKEN', 'github_token', 'token'] }),
  'github-oauth-token': (g) => ({ value: ghToken(g, 'gho'), names: ['access_token', 'oauth_token', 'GITHUB_OAUTH'] }),
  'github-app-token': (g) => ({ value: ghToken(g, g.pick(['ghs', 'ghu', 'ghr'])), names: ['token', 'installation_token', 'GITHUB_APP_TOKEN'] }),
  'github-pat-fine-grained': (g) => ({ value: `github_pat_${g.str(B62, 22)}_${g.str(B62, 59)}`, names: ['GITHUB_TOKEN', 'GH_PAT', 'token'] }),
  'gitlab-token': (g) => ({
    value: `${g.pick(['glpat-', 'glpat-', 'gldt-', 'glrt-', 'glptt-'])}${g.str(B62 + '-_', 20)}`,
    names: ['GITLAB_TOKEN', 'CI_JOB_TOKEN_OVERRIDE', 'private_token', 'token'],
  }),
  'slack-token': (g) =>
    g.pick([
      () => ({ value: `xoxb-${g.str(DIGITS, 12)}-${g.str(DIGITS, 13)}-${g.str(B62, 24)}`, names: ['SLACK_BOT_TOKEN', 'slack_token', 'botToken'] }),
      () => ({ value: `xoxp-${g.str(DIGITS, 11)}-${g.str(DIGITS, 12)}-${g.str(DIGITS, 13)}-${g.str(HEX, 32)}`, names: ['SLACK_USER_TOKEN', 'slack_token'] }),
      () => ({ value: `xapp-1-A${g.str(B32, 10)}-${g.str(DIGITS, 13)}-${g.str(HEX, 64)}`, names: ['SLACK_APP_TOKEN', 'appToken'] }),
    ])(),
  'slack-webhook': (g) => {
    const path = `T${g.str(B32, 9)}/B${g.str(B32, 10)}/${g.str(B62, 24)}`;
    return { value: `https://hooks.slack.com/services/${path}`, names: ['SLACK_WEBHOOK_URL', 'webhook_url', 'url'], secrets: [path] };
  },
  'stripe-key': (g) => ({
    value: g.pick([`sk_live_51${g.str(B62, 97)}`, `rk_live_51${g.str(B62, 97)}`, `sk_test_51${g.str(B62, 97)}`, `whsec_${g.str(B62, 32)}`]),
    names: ['STRIPE_SECRET_KEY', 'stripe_key', 'stripeSecret', 'STRIPE_WEBHOOK_SECRET'],
  }),
  'google-api-key': (g) => ({ value: `AIza${g.str(B62 + '-_', 35)}`, names: ['GOOGLE_API_KEY', 'apiKey', 'maps_key', 'GEMINI_API_KEY'] }),
  'openai-api-key': (g) => ({
    value: g.pick([
      `sk-proj-${g.str(B62 + '-_', 74)}T3BlbkFJ${g.str(B62 + '-_', 74)}`,
      `sk-${g.str(B62, 20)}T3BlbkFJ${g.str(B62, 20)}`,
      `sk-svcacct-${g.str(B62 + '-_', 74)}T3BlbkFJ${g.str(B62 + '-_', 74)}`,
    ]),
    names: ['OPENAI_API_KEY', 'openai_key', 'apiKey'],
  }),
  'anthropic-api-key': (g) => ({ value: `sk-ant-api03-${g.str(B62 + '-_', 93)}AA`, names: ['ANTHROPIC_API_KEY', 'anthropic_key', 'x-api-key'] }),
  'npm-token': (g) => ({ value: ghToken(g, 'npm'), names: ['NPM_TOKEN', 'NODE_AUTH_TOKEN', 'npmToken'] }),
  'pypi-token': (g) => ({ value: `pypi-AgEIcHlwaS5vcmc${g.str(B64URL, 160)}`, names: ['PYPI_TOKEN', 'TWINE_PASSWORD', 'password'] }),
  'huggingface-token': (g) => ({ value: `hf_${g.str(UPPER + LOWER, 34)}`, names: ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'hf_token'] }),
  'vault-token': (g) => ({ value: `hvs.${g.str(B62 + '-_', 92)}`, names: ['VAULT_TOKEN', 'vault_token', 'token'] }),
  'sendgrid-api-key': (g) => ({ value: `SG.${g.str(B62 + '-_', 22)}.${g.str(B62 + '-_', 43)}`, names: ['SENDGRID_API_KEY', 'sendgridKey', 'smtp_password'] }),
  'digitalocean-token': (g) => ({ value: `${g.pick(['dop', 'doo', 'dor'])}_v1_${g.str(HEX, 64)}`, names: ['DIGITALOCEAN_TOKEN', 'DO_TOKEN', 'do_token'] }),
  'azure-connection-string': (g) => {
    const key = g.mixed(B64, 86) + '==';
    return {
      value: g.pick([
        `DefaultEndpointsProtocol=https;AccountName=${g.word()}store${g.int(1, 99)};AccountKey=${key};EndpointSuffix=core.windows.net`,
        `Endpoint=sb://${g.word()}-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${key.slice(0, 43)}=`,
      ]),
      names: ['AZURE_STORAGE_CONNECTION_STRING', 'connectionString', 'ServiceBusConnection'],
      secrets: [key.slice(0, 43)],
    };
  },
  jwt: (g) => ({ value: jwt(g), names: ['id_token', 'access_token', 'token', 'KUBE_TOKEN'] }),
  'connection-string-password': (g) => {
    const pw = g.password().replace(/[@/#?%:]/g, 'x');
    const user = g.pick(['app', 'admin', 'postgres', 'svc_reader', 'root']);
    const url = g.pick([
      `postgres://${user}:${pw}@${g.host()}:5432/${g.word()}`,
      `postgresql://${user}:${pw}@${g.host()}/${g.word()}?sslmode=require`,
      `mysql://${user}:${pw}@${g.host()}:3306/${g.word()}`,
      `mongodb+srv://${user}:${pw}@cluster0.${g.str(LOWER, 5)}.mongodb.net/${g.word()}?retryWrites=true`,
      `redis://:${pw}@${g.host()}:6379/0`,
      `amqp://${user}:${pw}@${g.host()}:5672/vhost`,
      `jdbc:postgresql://${user}:${pw}@${g.host()}:5432/${g.word()}`,
    ]);
    return { value: url, names: ['DATABASE_URL', 'REDIS_URL', 'dsn', 'url', 'connection'], secrets: [pw] };
  },
  'connection-string-kv': (g) => {
    const pw = g.password().replace(/[;'"]/g, 'x');
    return {
      value: g.pick([
        `Server=tcp:${g.word()}-sql.database.windows.net,1433;Initial Catalog=${g.word()};Persist Security Info=False;User ID=${g.word()}admin;Password=${pw};Encrypt=True;`,
        `Data Source=${g.host()};Initial Catalog=${g.word()};User Id=sa;Password=${pw};`,
        `Host=${g.host()};Port=5432;Database=${g.word()};Username=app;Password=${pw}`,
        `Driver={ODBC Driver 18 for SQL Server};Server=${g.host()};Uid=reporter;Pwd=${pw};`,
      ]),
      names: ['ConnectionStrings__Default', 'connectionString', 'DB_CONNECTION'],
      secrets: [pw],
    };
  },
  'url-password-param': (g) => {
    const pw = g.password().replace(/[&;#'"%]/g, 'x');
    return {
      value: g.pick([
        `jdbc:mysql://${g.host()}:3306/${g.word()}?user=app&password=${pw}&useSSL=true`,
        `https://${g.host()}/api/login?username=svc&password=${pw}`,
        `jdbc:sqlserver://${g.host()}:1433;databaseName=${g.word()};user=sa;password=${pw};encrypt=true`,
      ]),
      names: ['JDBC_URL', 'login_url', 'url'],
      secrets: [pw],
    };
  },
  'url-basic-auth': (g) => {
    const tok = g.pick([g.mixed(B62, 32), g.password().replace(/[@/#?%:]/g, 'x'), g.str(HEX, 40)]);
    const url = g.pick([
      `https://${g.pick(['deploy', 'ci-bot', 'oauth2', 'x-token-auth'])}:${tok}@git.${g.pick(['example.com', 'corp.local'])}/${g.word()}/${g.word()}.git`,
      `https://${g.word()}:${tok}@${g.host()}/v2/`,
      `ftp://uploader:${tok}@files.${g.pick(['example.com', 'corp.local'])}/incoming/`,
      `https://admin:${tok}@${g.host()}:9200/_cluster/health`,
    ]);
    return { value: url, names: ['remote', 'url', 'REGISTRY_URL', 'endpoint'], secrets: [tok] };
  },
  'authorization-header': (g) => {
    const tok = g.pick([g.mixed(B62, 40), g.str(HEX, 48), Buffer.from(`${g.word()}:${g.password()}`).toString('base64'), `${g.mixed(B62, 24)}.${g.mixed(B62, 32)}`]);
    return { value: tok, names: ['Authorization'], secrets: [tok] };
  },
  'dotenv-secret': (g) => ({ value: g.password(), names: ['DB_PASSWORD', 'JWT_SECRET', 'SESSION_SECRET', 'ADMIN_PASSWORD', 'SMTP_PASS', 'ENCRYPTION_KEY', 'API_KEY', 'WEBHOOK_SECRET'] }),
  'password-assignment': (g) => ({ value: g.password(), names: ['password', 'db_password', 'adminPassword', 'POSTGRES_PASSWORD', 'passwd'] }),
  'generic-secret': (g) => ({
    value: g.pick([g.mixed(B62, g.int(28, 48)), g.str(HEX, g.pick([32, 40, 64])), `${g.mixed(B64URL, 32)}`, g.mixed(B64, 44)]),
    names: ['client_secret', 'apiKey', 'api_key', 'signing_key', 'webhook_token', 'auth_token', 'appSecret', 'encryption_key'],
  }),
};

// ---------------------------------------------------------------------------------------------
// Surroundings. Each takes a name and value and returns a realistic document.

type Context = (g: Gen, name: string, value: string) => string;

const json: Context = (g, name, value) =>
  JSON.stringify(
    {
      id: g.uuid(),
      status: g.pick(['active', 'ok', 'provisioned']),
      created_at: g.ts(),
      data: { owner: g.word(), region: g.pick(['us-east-1', 'eu-west-1', 'europe-west4']), [name]: value, tags: [g.word(), g.word()] },
      request_id: g.uuid(),
    },
    null,
    g.pick([0, 2]),
  );

const envFile: Context = (g, name, value) => {
  const quote = /[\s;]/.test(value) && !value.startsWith('"') ? '"' : g.pick(['', '', '"']);
  const v = value.startsWith('"') ? value : `${quote}${value}${quote}`;
  return [`# ${g.sentence(5)}`, `NODE_ENV=production`, `PORT=${g.int(3000, 9000)}`, `LOG_LEVEL=${g.pick(['info', 'debug'])}`, `${g.pick(['', 'export '])}${name.toUpperCase()}=${v}`, `REGION=${g.pick(['us-east-1', 'eu-central-1'])}`, `FEATURE_FLAGS=${g.word()},${g.word()}`].join('\n');
};

const yamlDoc: Context = (g, name, value) =>
  [
    'apiVersion: v1',
    `kind: ${g.pick(['ConfigMap', 'Secret'])}`,
    'metadata:',
    `  name: ${g.word()}-${g.word()}`,
    `  namespace: ${g.word()}`,
    g.pick(['data:', 'stringData:']),
    `  LOG_LEVEL: info`,
    `  ${name}: ${value.includes('\n') ? '|\n    ' + value.split('\n').join('\n    ') : value}`,
    `  TIMEOUT: "${g.int(5, 60)}s"`,
  ].join('\n');

const ciLog: Context = (g, name, value) =>
  [
    `${g.ts()} ##[group]Run ${g.pick(['./scripts/deploy.sh', 'make release', 'npm publish'])}`,
    `${g.ts()} Downloading ${g.word()}-${g.int(1, 9)}.${g.int(0, 20)}.${g.int(0, 9)}.tgz (${g.int(10, 900)} kB)`,
    `${g.ts()} + export ${name.toUpperCase()}=${value}`,
    `${g.ts()} ${g.sentence()}`,
    `${g.ts()} ##[endgroup]`,
  ].join('\n');

const source: Context = (g, name, value) =>
  g.pick([
    () => `import { Client } from './client';\n\n// ${g.sentence(6)}\nconst ${name.replace(/[^A-Za-z0-9_]/g, '_')} = '${value}';\nexport const client = new Client({ region: 'us-east-1', timeout: ${g.int(1, 30)}000 });\n`,
    () => `import os\n\n# ${g.sentence(6)}\n${name.replace(/[^A-Za-z0-9_]/g, '_')} = "${value}"\nTIMEOUT = ${g.int(1, 30)}\n\ndef handler(event, context):\n    return {"status": 200}\n`,
    () => `package main\n\nfunc main() {\n\t${name.replace(/[^A-Za-z0-9_]/g, '')} := "${value}"\n\tlog.Printf("starting %s", version)\n}\n`,
  ])();

const prompt: Context = (g, name, value) =>
  JSON.stringify({
    model: g.pick(['gpt-4o', 'claude-sonnet-4-5', 'o3-mini']),
    max_tokens: g.int(256, 4096),
    messages: [
      { role: 'system', content: 'You are a helpful coding assistant.' },
      {
        role: 'user',
        content: `${g.sentence()} Here is my config, why does the deploy fail?\n\n${name.toUpperCase()}=${value}\nREGION=us-east-1\n\n${g.sentence()}`,
      },
    ],
  });

const raw: Context = (g, _name, value) => `${g.sentence()}\n\n${value}\n\n${g.sentence()}`;

const kubeconfig: Context = (g, name, value) =>
  [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- cluster:',
    `    server: https://${g.host()}:6443`,
    `    certificate-authority-data: ${Buffer.from('-----BEGIN CERTIFICATE-----\n' + pemBody(g, 300) + '\n-----END CERTIFICATE-----').toString('base64')}`,
    `  name: ${g.word()}`,
    'users:',
    `- name: ${g.word()}-admin`,
    '  user:',
    `    ${name}: ${value}`,
    `current-context: ${g.word()}`,
  ].join('\n');

const httpDump: Context = (g, name, value) =>
  g.pick([
    () => `${g.ts()} DEBUG http > GET /api/v1/${g.word()}s HTTP/1.1\n${g.ts()} DEBUG http > Host: ${g.host()}\n${g.ts()} DEBUG http > ${name}: ${g.pick(['Bearer ', 'Basic ', 'token '])}${value}\n${g.ts()} DEBUG http > Accept: application/json`,
    () => `curl -sS -X POST https://${g.host()}/v1/${g.word()} -H 'Content-Type: application/json' -H "${name}: Bearer ${value}" -d '{"name":"${g.word()}"}'`,
    () => JSON.stringify({ method: 'GET', url: `https://${g.host()}/v2/${g.word()}`, headers: { Accept: '*/*', [name]: `Bearer ${value}` } }),
  ])();

const ini: Context = (g, name, value) => `[${g.pick(['default', 'profile prod', 'client'])}]\nregion = us-east-1\n${name} = ${value}\noutput = json\n`;

const csv: Context = (g, _name, value) => `User name,Password,Access key ID,Secret access key,Console login link\n${g.word()}-ci,,${value},https://${g.str(DIGITS, 12)}.signin.aws.amazon.com/console\n`;

const ALL: Record<string, Context> = { json, envFile, yamlDoc, ciLog, source, prompt, raw };
const CONTEXTS_FOR: Record<string, Record<string, Context>> = {
  'aws-key-pair': { csv, raw: (g, n, v) => raw(g, n, v.replace(',', '\t')), ciLog: (g, n, v) => ciLog(g, 'keys', v.replace(',', ' ')) },
  'aws-secret-access-key': { json, envFile, ini, yamlDoc, prompt },
  'aws-access-key-id': ALL,
  'gcp-service-account': {},
  'private-key': {},
  'private-key-base64': {},
  'npmrc-auth': {},
  'connection-string-password': ALL,
  'connection-string-kv': { json, envFile: (g, n, v) => envFile(g, n, `"${v}"`), yamlDoc, source, raw },
  'url-password-param': { json, envFile, yamlDoc, source, raw, ciLog },
  'url-basic-auth': { json, envFile, yamlDoc, ciLog, raw, gitconfig: (g, _n, v) => `[core]\n\trepositoryformatversion = 0\n[remote "origin"]\n\turl = ${v}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch "main"]\n\tremote = origin\n` },
  'authorization-header': { httpDump },
  'dotenv-secret': { envFile, prompt, ciLog, dockerfile: (g, n, v) => `FROM node:24-slim\nWORKDIR /app\nENV ${n}=${v}\nCOPY . .\nRUN npm ci\nCMD ["node", "server.js"]\n` },
  'password-assignment': { json, yamlDoc, ini, kubeconfig: (g, _n, v) => kubeconfig(g, 'password', v), compose: (g, n, v) => `services:\n  db:\n    image: postgres:16\n    environment:\n      ${n}: ${v}\n      POSTGRES_DB: ${g.word()}\n` },
  'generic-secret': { json, yamlDoc, source, ini },
};

function special(rule: string, g: Gen): { context: string; text: string; secrets: string[] } | undefined {
  if (rule === 'gcp-service-account') {
    const body = pemBody(g, 1216);
    const key = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
    const project = `${g.word()}-${g.word()}-${g.int(100000, 999999)}`;
    const doc = {
      type: 'service_account',
      project_id: project,
      private_key_id: g.str(HEX, 40),
      private_key: key,
      client_email: `${g.word()}@${project}.iam.gserviceaccount.com`,
      client_id: g.str(DIGITS, 21),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: 'https://oauth2.googleapis.com/token',
    };
    const asFile = JSON.stringify(doc, null, 2);
    const context = g.pick(['sa-json', 'sa-json', 'prompt']);
    const text = context === 'prompt' ? JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `Why does auth fail with this key?\n${asFile}` }] }) : asFile;
    return { context, text, secrets: body.split('\n') };
  }
  if (rule === 'private-key') {
    const kind = g.pick(['RSA ', '', 'EC ', 'OPENSSH ', 'ENCRYPTED-RSA ', 'PGP ', 'DSA ']);
    const context = g.pick(['file', 'json', 'yaml', 'ci-log', 'prompt', 'env']);
    const k = pem(g, kind);
    const lines = k.body.split('\n');
    let text: string;
    if (context === 'file') text = k.text + '\n';
    else if (context === 'json') text = JSON.stringify({ name: `${g.word()}-deploy-key`, private_key: k.text, fingerprint: `SHA256:${g.str(B64, 43)}` }, null, 2);
    else if (context === 'yaml') text = yamlDoc(g, 'id_rsa', k.text);
    else if (context === 'ci-log') text = `${g.ts()} + cat ~/.ssh/id_${g.pick(['rsa', 'ed25519'])}\n${k.text}\n${g.ts()} + ssh-add -l`;
    else if (context === 'env') text = `DEPLOY_HOST=${g.host()}\nSSH_KEY="${k.text}"\nDEPLOY_USER=deploy\n`;
    else text = JSON.stringify({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: `ssh says "invalid format" for this key:\n${k.text}` }] });
    return { context, text, secrets: lines };
  }
  if (rule === 'private-key-base64') {
    const k = pem(g, g.pick(['RSA ', 'EC ', '']));
    const b64 = Buffer.from(k.text + '\n').toString('base64');
    const context = g.pick(['kubeconfig', 'secret', 'json']);
    const text =
      context === 'kubeconfig'
        ? kubeconfig(g, 'client-key-data', b64).replace('    client-key-data', `    client-certificate-data: ${Buffer.from('-----BEGIN CERTIFICATE-----\n' + pemBody(g, 200) + '\n-----END CERTIFICATE-----').toString('base64')}\n    client-key-data`)
        : context === 'secret'
          ? `apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata:\n  name: ${g.word()}-tls\ndata:\n  tls.crt: ${Buffer.from('-----BEGIN CERTIFICATE-----\n' + pemBody(g, 200) + '\n-----END CERTIFICATE-----').toString('base64')}\n  tls.key: ${b64}\n`
          : JSON.stringify({ apiVersion: 'v1', kind: 'Secret', data: { 'tls.key': b64 } });
    // The first ~60 and last ~60 base64 characters encode the public BEGIN/END lines.
    return { context, text, secrets: [b64.slice(64, 124), b64.slice(-140, -80)] };
  }
  if (rule === 'npmrc-auth') {
    const tok = g.pick([g.uuid(), Buffer.from(`${g.word()}:${g.password()}`).toString('base64'), g.mixed(B62, 36)]);
    const key = g.pick(['_authToken', '_authToken', '_auth']);
    const context = g.pick(['npmrc', 'ci-log']);
    const line = `//${g.pick(['registry.npmjs.org', 'npm.pkg.github.com', 'registry.corp.local/repository/npm'])}/:${key}=${tok}`;
    const text = context === 'npmrc' ? `@${g.word()}:registry=https://npm.pkg.github.com\n${line}\nalways-auth=true\n` : `${g.ts()} + echo "${line}" >> ~/.npmrc\n${g.ts()} + npm publish --access public`;
    return { context, text, secrets: [tok] };
  }
  return undefined;
}

export function generatePositives(seed = 7): Positive[] {
  const g = new Gen(seed);
  const out: Positive[] = [];
  const rules = [...Object.keys(MAKERS), 'gcp-service-account', 'private-key', 'private-key-base64', 'npmrc-auth'];
  for (const rule of rules) {
    const per = rule === 'generic-secret' || rule === 'private-key' ? 16 : 11;
    for (let i = 0; i < per; i++) {
      const sp = special(rule, g);
      if (sp) {
        out.push({ id: `p${String(out.length + 1).padStart(4, '0')}`, rule, context: sp.context, text: sp.text, secrets: sp.secrets });
        continue;
      }
      const made = (MAKERS[rule] as (g: Gen) => Made)(g);
      const contexts = CONTEXTS_FOR[rule] ?? ALL;
      const names = Object.keys(contexts);
      const ctxName = names[i % names.length] ?? 'raw';
      const name = g.pick(made.names);
      const text = (contexts[ctxName] as Context)(g, name, made.value);
      out.push({ id: `p${String(out.length + 1).padStart(4, '0')}`, rule, context: ctxName, text, secrets: made.secrets ?? [made.value] });
    }
  }
  return [...out, ...addedPositives(seed, out.length)];
}

// ---------------------------------------------------------------------------------------------
// Negatives: look-alikes that must pass untouched.

type NegMaker = (g: Gen) => string;

function minifiedJs(g: Gen): string {
  const v = (): string => g.str(LOWER, 1);
  return `!function(${v()},${v()}){"use strict";var ${v()}=function(t,e){return t.token=e.key||null,t.password=e.password,t.secret=void 0,t};${v()}.exports={auth:function(n){return n.headers.authorization?n.headers.authorization.split(" ")[1]:null},apiKey:t.apiKey,config:{token:e.token,secretKey:r.secretKey}};var o=new Map;o.set("${g.word()}",${g.int(1, 999)});for(var i=0;i<${g.int(5, 50)};i++)o.get(i)}(this,function(){return ${g.int(1, 9)}});`;
}

const NEGATIVES: Record<string, NegMaker> = {
  uuid: (g) => JSON.stringify({ id: g.uuid(), request_id: g.uuid(), trace_id: g.str(HEX, 32), span_id: g.str(HEX, 16), correlationId: g.uuid(), user: { id: g.uuid(), name: g.word() } }, null, 2),
  'git-sha': (g) => `commit ${g.str(HEX, 40)}\nMerge: ${g.str(HEX, 7)} ${g.str(HEX, 7)}\nAuthor: ${g.word()} <${g.word()}@example.com>\nDate:   Mon Jun 2 12:00:00 2025 +0000\n\n    ${g.sentence()}\n\n    Change-Id: I${g.str(HEX, 40)}\n    Reviewed-on: https://review.example.com/c/${g.int(1000, 99999)}\n`,
  'github-api-commit': (g) => JSON.stringify({ sha: g.str(HEX, 40), node_id: `C_kwDO${g.str(B62, 20)}`, commit: { tree: { sha: g.str(HEX, 40) }, message: g.sentence(), verification: { verified: true, signature: null } }, parents: [{ sha: g.str(HEX, 40) }] }),
  'sha256-digest': (g) => `${g.str(HEX, 64)}  ${g.word()}-${g.int(1, 9)}.${g.int(0, 9)}.tar.gz\n${g.str(HEX, 64)}  ${g.word()}.zip\nimage: ghcr.io/${g.word()}/${g.word()}@sha256:${g.str(HEX, 64)}\n`,
  'base64-image': (g) => `<img alt="${g.word()}" src="data:image/png;base64,iVBORw0KGgo${g.bytes(g.int(200, 900)).toString('base64')}">`,
  'base64-json-blob': (g) => JSON.stringify({ name: `${g.word()}.png`, content: g.bytes(g.int(300, 1500)).toString('base64'), encoding: 'base64', sha: g.str(HEX, 40), size: g.int(100, 99999) }),
  'minified-js': minifiedJs,
  'package-lock': (g) =>
    JSON.stringify(
      {
        [`node_modules/${g.word()}`]: { version: `${g.int(1, 9)}.${g.int(0, 20)}.${g.int(0, 9)}`, resolved: `https://registry.npmjs.org/${g.word()}/-/${g.word()}-1.2.3.tgz`, integrity: `sha512-${g.bytes(64).toString('base64')}`, license: 'MIT' },
        [`node_modules/@${g.word()}/${g.word()}`]: { version: '2.0.1', integrity: `sha1-${g.bytes(20).toString('base64')}`, dev: true },
      },
      null,
      2,
    ),
  'yarn-lock': (g) => `"${g.word()}@^${g.int(1, 9)}.0.0":\n  version "${g.int(1, 9)}.${g.int(0, 9)}.${g.int(0, 9)}"\n  resolved "https://registry.yarnpkg.com/${g.word()}/-/${g.word()}-1.0.0.tgz#${g.str(HEX, 40)}"\n  integrity sha512-${g.bytes(64).toString('base64')}\n`,
  'go-sum': (g) => `github.com/${g.word()}/${g.word()} v1.${g.int(0, 20)}.${g.int(0, 9)} h1:${g.bytes(32).toString('base64')}\ngithub.com/${g.word()}/${g.word()} v1.2.0/go.mod h1:${g.bytes(32).toString('base64')}\n`,
  'cargo-lock': (g) => `[[package]]\nname = "${g.word()}"\nversion = "0.${g.int(1, 30)}.${g.int(0, 9)}"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "${g.str(HEX, 64)}"\n`,
  'example-keys': (g) =>
    g.pick([
      `aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n`,
      `AWS_ACCESS_KEY_ID=AKIAI44QH8DHBEXAMPLE\nAWS_SECRET_ACCESS_KEY=je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY\n`,
      `"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AccessKeyId": "ASIAIOSFODNN7EXAMPLE"`,
      `stripe.api_key = "sk_test_EXAMPLE${g.str(B62, 20)}"`,
      `export GITHUB_TOKEN=ghp_EXAMPLE${g.str(B62, 29)}`,
      `DATABASE_URL=postgres://user:EXAMPLE_PASSWORD@localhost:5432/app`,
    ]),
  // Token-shaped strings whose checksum is wrong: test fixtures, truncated copies, typos.
  'bad-checksum-token': (g) => {
    const fake = `${g.pick(['ghp_', 'gho_', 'ghs_', 'ghu_', 'npm_'])}${g.str(B62, 36)}`;
    return g.pick([
      `it('rejects a revoked token', async () => {\n  await expect(login('${fake}')).rejects.toThrow(/401/);\n});`,
      `fixtures/tokens/${fake}.json`,
      `${g.ts()} WARN auth: token ${fake} was rejected by the API (401 Bad credentials)`,
      `| ${fake} | revoked | ${g.ts()} |`,
    ]);
  },
  placeholders: (g) =>
    g.pick([
      `API_KEY=\${API_KEY}\nDB_PASSWORD=\${DB_PASSWORD:-}\nJWT_SECRET=$JWT_SECRET\n`,
      `password: <your-password>\ntoken: "{{ .Values.apiToken }}"\nclient_secret: "\${{ secrets.CLIENT_SECRET }}"\n`,
      `curl -H "Authorization: Bearer $TOKEN" https://api.example.com/v1/${g.word()}`,
      `postgres://user:password@localhost:5432/${g.word()}`,
      `"password": "********", "api_key": "xxxxxxxxxxxxxxxxxxxxxxxx"`,
      `SECRET_KEY=changeme\nADMIN_PASSWORD=password\nSMTP_PASS=\n`,
      `Authorization: Bearer <token>\nX-Api-Key: {{api_key}}\n`,
      `git clone https://\${GIT_USER}:\${GIT_TOKEN}@github.com/${g.word()}/${g.word()}.git`,
    ]),
  'k8s-secret-refs': (g) =>
    `apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: ${g.word()}\n        env:\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: ${g.word()}-credentials\n              key: password\n        - name: API_TOKEN\n          valueFrom:\n            secretKeyRef: {name: ${g.word()}-api, key: token}\n      volumes:\n      - name: tls\n        secret:\n          secretName: ${g.word()}-tls-secret\n`,
  i18n: (g) =>
    JSON.stringify({
      password: g.pick(['Passwort', 'Mot de passe', 'Contraseña', 'Password', 'Wachtwoord']),
      password_confirm: 'Confirm password',
      token_expired: `Your session token has expired. ${g.sentence(5)}`,
      secret_question: 'What was the name of your first pet?',
      api_key_help: 'Create an API key in Settings → Developer.',
      forgot_password: 'Forgot your password?',
    }),
  'code-reading-config': (g) =>
    g.pick([
      `const token = process.env.GITHUB_TOKEN;\nconst apiKey = config.get('apiKey');\nconst password = await vault.read('db/password');\n`,
      `password = os.environ["DB_PASSWORD"]\nsecret_key = settings.SECRET_KEY\napi_token = get_token(session)\n`,
      `func connect(cfg Config) error {\n\tpassword := cfg.Password\n\ttoken := os.Getenv("TOKEN")\n\treturn db.Open(cfg.Host, password)\n}\n`,
      `this.accessKeyId = credentials.AccessKeyId;\nthis.secretAccessKey = credentials.SecretAccessKey;\nthis.sessionToken = credentials.SessionToken;\n`,
      `if (user.password !== hashPassword(input.password)) throw new AuthError('invalid password');\nconst secret = DEFAULT_SECRET;\n`,
      `private_key = load_pem(path)\nauth = HTTPBasicAuth(username, password)\ntoken_type = "Bearer"\n`,
    ]),
  'urls-without-credentials': (g) =>
    `See https://${g.host()}/docs/${g.word()}?page=${g.int(1, 9)}&token_type=bearer for details.\nClone with git@github.com:${g.word()}/${g.word()}.git or https://github.com/${g.word()}/${g.word()}.git\nContact ${g.word()}@example.com. Mirror: ftp://mirror.example.org/pub/${g.word()}/\nredis://${g.host()}:6379/0 postgres://${g.host()}:5432/${g.word()}`,
  'public-keys-and-certs': (g) =>
    g.pick([
      `-----BEGIN CERTIFICATE-----\n${pemBody(g, 700)}\n-----END CERTIFICATE-----\n`,
      `-----BEGIN PUBLIC KEY-----\n${pemBody(g, 294)}\n-----END PUBLIC KEY-----\n`,
      `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${g.str(B64, 43)} ${g.word()}@laptop\n`,
      `ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ${g.str(B64, 500)} deploy@ci\n`,
      `    certificate-authority-data: ${Buffer.from('-----BEGIN CERTIFICATE-----\n' + pemBody(g, 400) + '\n-----END CERTIFICATE-----\n').toString('base64')}\n`,
      `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${pemBody(g, 500)}\n-----END PGP PUBLIC KEY BLOCK-----\n`,
    ]),
  'ci-log-clean': (g) =>
    [
      `${g.ts()} Run actions/checkout@v4`,
      `${g.ts()} Syncing repository: ${g.word()}/${g.word()}`,
      `${g.ts()} GITHUB_TOKEN: ***`,
      `${g.ts()} npm warn deprecated ${g.word()}@1.0.0: use ${g.word()} instead`,
      `${g.ts()} added ${g.int(100, 1500)} packages, and audited ${g.int(100, 1500)} packages in ${g.int(2, 60)}s`,
      `${g.ts()} Successfully built ${g.str(HEX, 12)}`,
      `${g.ts()} Successfully tagged ${g.word()}:${g.str(HEX, 7)}`,
      `${g.ts()} ${g.sentence()}`,
    ].join('\n'),
  'prose-about-tokens': (g) =>
    `## Authentication\n\nCreate a personal access token with the \`repo\` scope and store it as \`GITHUB_TOKEN\`. ${g.sentence()} Tokens start with \`ghp_\`; API keys look like \`sk-...\`. Never commit your password or secret key. ${g.sentence()}\n`,
  'non-secret-ids': (g) =>
    JSON.stringify({
      customer: `cus_${g.str(B62, 14)}`,
      charge: `ch_${g.str(B62, 24)}`,
      payment_intent: `pi_${g.str(B62, 24)}`,
      publishable_key: `pk_live_${g.str(B62, 99)}`,
      channel: `C${g.str(B32, 10)}`,
      arn: `arn:aws:iam::${g.str(DIGITS, 12)}:role/${g.word()}-${g.word()}`,
      client_id: `${g.str(DIGITS, 12)}-${g.str(LOWER + DIGITS, 32)}.apps.googleusercontent.com`,
      request: `req_${g.str(B62, 24)}`,
    }),
  'hashes-under-plain-names': (g) =>
    JSON.stringify({ checksum: g.str(HEX, 64), etag: `"${g.str(HEX, 32)}"`, digest: `sha256:${g.str(HEX, 64)}`, md5: g.str(HEX, 32), fingerprint: g.str(HEX, 40), build_id: g.str(B62, 24), commit: g.str(HEX, 40) }),
  'jwt-lookalikes': (g) =>
    g.pick([
      `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify({ sub: g.word() })).toString('base64url')}.`,
      `state=eyJ${g.str(B64URL, 40)}&code=${g.str(B62, 20)}`,
      `${Buffer.from(JSON.stringify({ page: g.int(1, 9), size: 50 })).toString('base64url')}.${g.str(B64URL, 10)}`,
      `"cursor": "eyJvZmZzZXQiOjEwMH0", "next": "eyJ${g.str(B64URL, 30)}.bm90LWpzb24.${g.str(B64URL, 20)}"`,
    ]),
  'css-html': (g) => `.${g.word()}-${g.word()} { color: #${g.str(HEX, 6)}; background: url(data:image/svg+xml;base64,${g.bytes(120).toString('base64')}); }\n<input type="password" name="password" autocomplete="current-password" placeholder="Password">\n<meta name="csrf-token" content="{{ csrf_token() }}">`,
  'pagination-tokens': (g) => JSON.stringify({ items: [], nextPageToken: g.mixed(B64URL, 48), continuationToken: g.mixed(B62, 40), syncToken: g.str(DIGITS, 12), cursor: g.mixed(B64, 32) }),
  'llm-usage': (g) => JSON.stringify({ id: `chatcmpl-${g.str(B62, 29)}`, object: 'chat.completion', model: 'gpt-4o-2024-08-06', usage: { prompt_tokens: g.int(10, 9000), completion_tokens: g.int(10, 4000), total_tokens: g.int(100, 12000) }, system_fingerprint: `fp_${g.str(HEX, 10)}`, max_tokens: 4096 }),
  'config-non-secret': (g) =>
    `server:\n  port: ${g.int(1000, 9999)}\n  host: ${g.host()}\nauth:\n  provider: github\n  enabled: true\n  token_ttl: 3600\n  password_min_length: 12\ncache:\n  key: ${g.word()}-${g.word()}-v${g.int(1, 9)}\n  key_prefix: ${g.word()}\nsecret_name: ${g.word()}-credentials\n`,
  'identifier-values': (g) =>
    `const config = {\n  authScheme: ${g.pick(['AuthScheme.Bearer', 'DynamoDBHttpAuthSchemeProvider', 'defaultAuthSchemeProvider'])},\n  tokenProvider: ${g.pick(['fromTokenFile', 'StaticTokenProvider', 'createTokenProvider'])}(),\n  secretsManager: new SecretsManagerClient({ region }),\n  passwordHasher: argon2id,\n};\n`,
};

// ---------------------------------------------------------------------------------------------
// Formats added after the first corpus (Twilio, Mailgun, Heroku, Shopify, Databricks, Atlassian,
// Datadog, Entra ID, legacy Vault tokens, PuTTY keys, newer GitLab prefixes). They draw from their
// own seeded streams and are appended, so adding them left every earlier row as it was.

const ADDED_ALPHABET_AZURE = B62 + '_~.-';

function hex(g: Gen, n: number): string {
  return g.str(HEX, n);
}

/** Atlassian API token: ATATT3xFfGF0 + base64url, `=`, CRC32 of everything before as 8 upper-case hex. */
function atlassianToken(g: Gen): string {
  const head = `ATATT3xFfGF0${g.str(B64URL, 171)}=`;
  return head + crc32(head).toString(16).toUpperCase().padStart(8, '0');
}

/** Heroku's current keys: HRKU-AA, 42 base64url, `_____w` (0xffffffff in the payload) and 10 more. */
function herokuKey(g: Gen): string {
  return `HRKU-AA${g.str(B64URL, 42)}_____w${g.str(B64URL, 10)}`;
}

function sshString(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function base64Lines(b: Buffer): string[] {
  const s = b.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < s.length; i += 64) lines.push(s.slice(i, i + 64));
  return lines;
}

/** A .ppk file (v2 or v3, plain or passphrase-protected) with random key material. */
function ppk(g: Gen, nl: string, version: 2 | 3, alg: string, encrypted: boolean): { text: string; secrets: string[] } {
  const pub =
    alg === 'ssh-rsa'
      ? Buffer.concat([sshString(alg), sshString(Buffer.from([1, 0, 1])), sshString(g.bytes(257))])
      : alg === 'ssh-ed25519'
        ? Buffer.concat([sshString(alg), sshString(g.bytes(32))])
        : Buffer.concat([sshString(alg), sshString('nistp256'), sshString(g.bytes(65))]);
  let priv = alg === 'ssh-rsa' ? Buffer.concat([sshString(g.bytes(256)), sshString(g.bytes(129)), sshString(g.bytes(129)), sshString(g.bytes(128))]) : sshString(g.bytes(32));
  if (encrypted) priv = Buffer.concat([priv, g.bytes(16 - (priv.length % 16))]);
  const publicLines = base64Lines(pub);
  const privateLines = base64Lines(priv);
  const mac = hex(g, version === 2 ? 40 : 64);
  const comment = `${alg === 'ssh-rsa' ? 'rsa' : alg === 'ssh-ed25519' ? 'ed25519' : 'ecdsa'}-key-2025${g.int(10, 12)}${g.int(10, 28)}`;
  const kdf =
    version === 3 && encrypted
      ? ['Key-Derivation: Argon2id', 'Argon2-Memory: 8192', 'Argon2-Passes: 21', 'Argon2-Parallelism: 1', `Argon2-Salt: ${hex(g, 32)}`]
      : [];
  const lines = [
    `PuTTY-User-Key-File-${String(version)}: ${alg}`,
    `Encryption: ${encrypted ? 'aes256-cbc' : 'none'}`,
    `Comment: ${comment}`,
    `Public-Lines: ${String(publicLines.length)}`,
    ...publicLines,
    ...kdf,
    `Private-Lines: ${String(privateLines.length)}`,
    ...privateLines,
    `Private-MAC: ${mac}`,
  ];
  return { text: lines.join(nl) + nl, secrets: [...privateLines, mac] };
}

const ADDED_MAKERS: Record<string, (g: Gen) => Made> = {
  'twilio-api-key': (g) => ({ value: `SK${hex(g, 32)}`, names: ['TWILIO_API_KEY', 'TWILIO_API_KEY_SID', 'twilio_api_key', 'apiKeySid'] }),
  'twilio-auth-token': (g) => ({ value: hex(g, 32), names: ['TWILIO_AUTH_TOKEN', 'twilio_auth_token', 'twilioAuthToken', 'TWILIO_TOKEN'] }),
  'mailgun-api-key': (g) => ({
    value: g.pick([`key-${hex(g, 32)}`, `${hex(g, 32)}-${hex(g, 8)}-${hex(g, 8)}`]),
    names: ['MAILGUN_API_KEY', 'mailgun_api_key', 'mailgunApiKey', 'MAILGUN_SIGNING_KEY'],
  }),
  'heroku-api-key': (g) => ({ value: herokuKey(g), names: ['HEROKU_API_KEY', 'heroku_api_key', 'herokuApiKey', 'HEROKU_TOKEN'] }),
  'heroku-api-key-legacy': (g) => ({ value: g.uuid(), names: ['HEROKU_API_KEY', 'heroku_api_key', 'herokuApiKey', 'HEROKU_OAUTH_TOKEN'] }),
  'shopify-token': (g) => ({
    value: `${g.pick(['shpat', 'shpat', 'shpca', 'shppa', 'shpss'])}_${hex(g, 32)}`,
    names: ['SHOPIFY_ACCESS_TOKEN', 'shopify_admin_token', 'accessToken', 'SHOPIFY_API_SECRET'],
  }),
  'databricks-token': (g) => ({ value: `dapi${hex(g, 32)}${g.pick(['', '', '', '-2', '-3'])}`, names: ['DATABRICKS_TOKEN', 'databricks_token', 'token', 'DBX_TOKEN'] }),
  'atlassian-api-token': (g) => ({ value: atlassianToken(g), names: ['JIRA_API_TOKEN', 'ATLASSIAN_API_TOKEN', 'CONFLUENCE_TOKEN', 'jira_token', 'apiToken'] }),
  'datadog-api-key': (g) => ({ value: hex(g, 32), names: ['DD_API_KEY', 'DATADOG_API_KEY', 'datadog_api_key', 'ddApiKey'] }),
  'datadog-app-key': (g) => ({ value: hex(g, 40), names: ['DD_APP_KEY', 'DD_APPLICATION_KEY', 'DATADOG_APP_KEY', 'datadog_app_key'] }),
  'azure-ad-client-secret': (g) => ({
    value: `${g.str(ADDED_ALPHABET_AZURE, 3)}${g.str(DIGITS, 1)}Q~${g.str(ADDED_ALPHABET_AZURE, 34)}`,
    names: ['AZURE_CLIENT_SECRET', 'clientSecret', 'client_secret', 'ARM_CLIENT_SECRET'],
  }),
  'vault-token': (g) => ({ value: `s.${g.str(B62, 24)}${g.pick(['', '', `.${g.str(B62, 5)}`])}`, names: ['VAULT_TOKEN'] }),
  'gitlab-token': (g) => {
    const instance = g.int(0, 5) === 0 ? `${g.pick(['SIE', 'ACME', 'corp'])}-` : '';
    const token = g.pick([
      () => `glrtr-${g.str(B62 + '-_', 20)}`,
      () => `glrt-t${String(g.int(1, 3))}_${g.str(B64URL, 27)}.01.${g.str(LOWER + DIGITS, 9)}`,
      () => `glpat-${g.str(B64URL, 38)}.01.${g.str(LOWER + DIGITS, 9)}`,
      () => `glffct-${g.str(B62 + '-_', 20)}`,
      () => `GR1348941${g.str(B62 + '-_', 20)}`,
      () => `glcbt-${String(g.int(1, 99))}_${g.str(B62 + '-_', 20)}`,
    ])();
    return { value: `${instance}${token}`, names: ['GITLAB_RUNNER_TOKEN', 'CI_SERVER_TOKEN', 'token', 'REGISTRATION_TOKEN'], secrets: [token] };
  },
};

const curlHeader =
  (header: string): Context =>
  (g, _name, value) =>
    `curl -sS -X ${g.pick(['GET', 'POST'])} "https://${g.host()}/api/v2/${g.word()}" \\\n  -H "Content-Type: application/json" \\\n  -H "${header}: ${value}"`;

const vaultContexts: Record<string, Context> = {
  envFile: (g, _n, v) => envFile(g, 'VAULT_TOKEN', v),
  'login-response': (g, _n, v) =>
    JSON.stringify(
      {
        request_id: g.uuid(),
        lease_id: '',
        renewable: false,
        auth: { client_token: v, accessor: g.str(B62, 24), policies: ['default', g.word()], token_type: 'service', lease_duration: 2764800, renewable: true },
      },
      null,
      g.pick([0, 2]),
    ),
  httpDump: (g, _n, v) => `curl -sS -H "X-Vault-Token: ${v}" https://vault.${g.host()}:8200/v1/secret/data/${g.word()}`,
  'k8s-env': (g, _n, v) => `      containers:\n      - name: ${g.word()}\n        env:\n        - name: VAULT_ADDR\n          value: https://vault.${g.host()}:8200\n        - name: VAULT_TOKEN\n          value: "${v}"\n`,
  ciLog: (g, _n, v) => `${g.ts()} $ vault login -no-print ${v}\n${g.ts()} $ vault kv get -field=password secret/${g.word()}\n${g.ts()} ${g.sentence()}`,
  prompt,
};

const ADDED_CONTEXTS_FOR: Record<string, Record<string, Context>> = {
  'twilio-api-key': {
    ...ALL,
    'twilio-api-response': (g, _n, v) =>
      JSON.stringify({ sid: v, friendly_name: `${g.word()}-ci`, date_created: new Date(Date.parse(g.ts())).toUTCString(), date_updated: new Date(Date.parse(g.ts())).toUTCString() }),
  },
  'twilio-auth-token': { json, envFile, yamlDoc, ciLog, source, prompt, ini },
  'mailgun-api-key': {
    envFile,
    json,
    yamlDoc,
    ciLog,
    source,
    prompt,
    curl: (g, _n, v) => `curl -s --user 'api:${v}' https://api.mailgun.net/v3/mg.${g.pick(['example.com', 'corp.local'])}/messages \\\n  -F from='ci <ci@mg.example.com>' -F to=${g.word()}@example.com -F subject='${g.sentence(3)}'`,
  },
  'heroku-api-key': { ...ALL, netrc: (g, _n, v) => `machine api.heroku.com\n  login ${g.word()}@example.com\n  password ${v}\nmachine git.heroku.com\n  login ${g.word()}@example.com\n  password ${v}\n` },
  'heroku-api-key-legacy': { json, envFile, yamlDoc, ciLog, source, prompt, ini },
  'shopify-token': { ...ALL, httpDump: curlHeader('X-Shopify-Access-Token') },
  'databricks-token': { ...ALL, databrickscfg: (g, _n, v) => `[DEFAULT]\nhost  = https://adb-${g.str(DIGITS, 16)}.${String(g.int(1, 19))}.azuredatabricks.net\ntoken = ${v}\n` },
  'atlassian-api-token': ALL,
  'datadog-api-key': { json, envFile, yamlDoc, ciLog, source, prompt, httpDump: curlHeader('DD-API-KEY') },
  'datadog-app-key': { json, envFile, yamlDoc, ciLog, source, prompt, httpDump: curlHeader('DD-APPLICATION-KEY') },
  'azure-ad-client-secret': {
    ...ALL,
    'az-cli': (g, _n, v) => JSON.stringify({ appId: g.uuid(), displayName: `${g.word()}-sp`, password: v, tenant: g.uuid() }, null, 2),
  },
  'vault-token': vaultContexts,
  'gitlab-token': {
    ...ALL,
    'runner-config': (g, _n, v) =>
      `concurrent = 4\n\n[[runners]]\n  name = "${g.word()}-runner"\n  url = "https://gitlab.${g.pick(['example.com', 'corp.local'])}/"\n  id = ${String(g.int(1, 999))}\n  token = "${v}"\n  executor = "docker"\n`,
  },
};

/** Row i of a rule with its own generator; `undefined` for rules made by ADDED_MAKERS. */
function addedSpecial(rule: string, g: Gen, i: number): { context: string; text: string; secrets: string[] } | undefined {
  if (rule !== 'putty-private-key') return undefined;
  // Every context, version, algorithm and protection appears (v3 + passphrase adds the Argon2 lines).
  const context = ['file', 'file-crlf', 'ci-log', 'json', 'yaml', 'prompt'][i % 6] ?? 'file';
  const alg = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ssh-rsa'][i % 4] ?? 'ssh-rsa';
  // Windows tools write CRLF; a key pasted into JSON keeps it as `\r\n`.
  const k = ppk(g, context === 'file-crlf' || context === 'json' ? '\r\n' : '\n', i % 3 === 0 ? 2 : 3, alg, i % 5 === 1 || i % 5 === 3);
  const name = `${g.word()}-deploy.ppk`;
  let text: string;
  if (context === 'file' || context === 'file-crlf') text = k.text;
  else if (context === 'ci-log') text = `${g.ts()} + cat keys/${name}\n${k.text}${g.ts()} + pscp -i keys/${name} build.zip deploy@${g.host()}:/srv/`;
  else if (context === 'json') text = JSON.stringify({ name, type: 'ppk', content: k.text }, null, 2);
  else if (context === 'yaml') text = yamlDoc(g, 'deploy.ppk', k.text.trimEnd());
  else text = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: `WinSCP says "unable to use key file" for this key, why?\n\n${k.text}` }] });
  return { context, text, secrets: k.secrets };
}

/** Rows per added rule; the extended rules (gitlab-token, vault-token) get rows for their new formats. */
const ADDED_RULES: [string, number][] = [
  ['twilio-api-key', 11],
  ['twilio-auth-token', 11],
  ['mailgun-api-key', 12],
  ['heroku-api-key', 11],
  ['heroku-api-key-legacy', 11],
  ['shopify-token', 11],
  ['databricks-token', 11],
  ['atlassian-api-token', 11],
  ['datadog-api-key', 11],
  ['datadog-app-key', 11],
  ['azure-ad-client-secret', 11],
  ['vault-token', 10],
  ['putty-private-key', 12],
  ['gitlab-token', 12],
];

function addedPositives(seed: number, first: number): Positive[] {
  const out: Positive[] = [];
  for (const [rule, per] of ADDED_RULES) {
    // One stream per rule: a rule added later does not reshuffle the rows of another.
    const g = new Gen(seed * 1000 + crc32(rule));
    for (let i = 0; i < per; i++) {
      const id = `p${String(first + out.length + 1).padStart(4, '0')}`;
      const sp = addedSpecial(rule, g, i);
      if (sp) {
        out.push({ id, rule, context: sp.context, text: sp.text, secrets: sp.secrets });
        continue;
      }
      const made = (ADDED_MAKERS[rule] as (g: Gen) => Made)(g);
      const contexts = ADDED_CONTEXTS_FOR[rule] ?? ALL;
      const names = Object.keys(contexts);
      const ctxName = names[i % names.length] ?? 'raw';
      const text = (contexts[ctxName] as Context)(g, g.pick(made.names), made.value);
      out.push({ id, rule, context: ctxName, text, secrets: made.secrets ?? [made.value] });
    }
  }
  return out;
}

// Look-alikes for the added formats: every variant of a kind appears, in order, then again.
const ADDED_NEGATIVES: Record<string, NegMaker[]> = {
  'twilio-lookalikes': [
    (g) => {
      const ac = `AC${hex(g, 32)}`;
      const sm = `SM${hex(g, 32)}`;
      return JSON.stringify({ sid: sm, account_sid: ac, messaging_service_sid: `MG${hex(g, 32)}`, status: 'queued', num_segments: '1', uri: `/2010-04-01/Accounts/${ac}/Messages/${sm}.json` });
    },
    (g) => `TWILIO_ACCOUNT_SID=AC${hex(g, 32)}\nTWILIO_PHONE_NUMBER=+1415555${g.str(DIGITS, 4)}\nTWILIO_VERIFY_SERVICE_SID=VA${hex(g, 32)}\n`,
    () => `## Twilio\n\nCreate an API key in the Console. Its SID starts with \`SK\` (for example \`SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\`) and comes with a secret you see once.\n`,
    (g) => `| key | owner | state |\n|---|---|---|\n| SK${hex(g, 31)} | ${g.word()}-bot | revoked |\n`,
    (g) => JSON.stringify({ object: `SK${hex(g, 40)}`, size: g.int(100, 9999) }),
    (g) => `part,description\nSK${hex(g, 32).toUpperCase()},${g.word()} bracket\n`,
    (g) => JSON.stringify({ task: `TASK${hex(g, 32)}`, disk: `DISK${hex(g, 32)}` }),
    (g) => `ToCountry=US&CallSid=CA${hex(g, 32)}&AccountSid=AC${hex(g, 32)}&From=%2B1415555${g.str(DIGITS, 4)}&CallStatus=ringing&ApiVersion=2010-04-01`,
    () => `TWILIO_AUTH_TOKEN=your_auth_token\nTWILIO_API_SECRET=\${TWILIO_API_SECRET}\n`,
    (g) => `twilio:\n  auth_token_ttl: 3600\n  edge: ashburn\n  region: us1\n  account_sid: AC${hex(g, 32)}\n`,
    (g) => `${g.ts()} POST /sms/inbound 200\n  X-Twilio-Signature: ${g.bytes(20).toString('base64')}\n  I-Twilio-Idempotency-Token: ${g.uuid()}`,
  ],
  'mailgun-lookalikes': [
    () => `Replace key-3ax6xnjp29jd6fds4gc373sgvjxteol0 in the examples with your own private API key.`,
    (g) => `mailgun.validate({ publicKey: 'pubkey-${hex(g, 32)}', address: input.email });`,
    (g) => `${g.ts()} cache hit cache-key-${hex(g, 32)} (${g.int(1, 90)} ms)`,
    (g) => `expired: key-${hex(g, 31)}`,
    (g) => `KEY-${hex(g, 32).toUpperCase()} rotated`,
    (g) => JSON.stringify({ event: 'delivered', id: g.str(B64URL, 22), timestamp: g.int(1700000000, 1760000000), recipient: `${g.word()}@example.com`, message: { headers: { 'message-id': `20250101.${hex(g, 16)}@mg.example.com` } } }),
    (g) => `MAILGUN_DOMAIN=mg.${g.pick(['example.com', 'corp.local'])}\nMAILGUN_FROM="${g.word()} <noreply@mg.example.com>"\nMAILGUN_REGION=eu\n`,
    () => `api:\n  version: v3\n  base_url: https://api.mailgun.net\n`,
    (g) => `basic auth api:${hex(g, 32)}-${hex(g, 8)} rejected`,
    (g) => `mailgun_route_id: ${hex(g, 24)}\nmailgun_webhook_url: https://hooks.example.com/mailgun/${g.word()}\n`,
    (g) => `Use a key-value store: key-${g.word()}-${g.word()} maps to ${g.word()}.`,
  ],
  'heroku-lookalikes': [
    (g) => `HEROKU_APP_ID=${g.uuid()}\nHEROKU_APP_NAME=${g.word()}-${g.word()}\nHEROKU_DYNO_ID=${g.uuid()}\nHEROKU_SLUG_COMMIT=${hex(g, 40)}\nHEROKU_RELEASE_VERSION=v${String(g.int(10, 400))}\n`,
    (g) => JSON.stringify({ id: g.uuid(), name: `${g.word()}-${g.word()}`, owner: { id: g.uuid(), email: `${g.word()}@example.com` }, region: { id: g.uuid(), name: 'us' }, stack: { id: g.uuid(), name: 'heroku-24' } }, null, 2),
    (g) => `HEROKU_AUTHORIZATION_ID=${g.uuid()}\nHEROKU_AUTHORIZATION_SCOPE=global\n`,
    (g) => `$ heroku authorizations\nHeroku CLI login from 203.0.113.${String(g.int(1, 254))}  ${g.uuid()}  global\nLong-lived user authorization   ${g.uuid()}  global\n`,
    () => `New Heroku API keys start with \`HRKU-AA\`; older ones are UUIDs. Rotate both with \`heroku authorizations:rotate\`.`,
    (g) => `${g.ts()} auth failed for HRKU-AA${g.str(B64URL, 20)}… (truncated)`,
    () => `heroku config:set HEROKU_API_KEY=HRKU-AAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`,
    () => `provider "heroku" {\n  email   = var.heroku_email\n  api_key = var.heroku_api_key\n}\n`,
    () => `      - uses: akhileshns/heroku-deploy@v3.13.15\n        with:\n          heroku_api_key: \${{ secrets.HEROKU_API_KEY }}\n          heroku_email: ci@example.com\n`,
    () => JSON.stringify({ name: 'app', env: { HEROKU_API_KEY: { description: 'API key for the release task', required: true } } }),
    (g) => `git push https://git.heroku.com/${g.word()}-${g.word()}.git main\nheroku git:remote -a ${g.word()}`,
    (g) => `at=info method=GET path="/api/${g.word()}" host=${g.word()}.herokuapp.com request_id=${g.uuid()} fwd="203.0.113.${String(g.int(1, 254))}" dyno=web.1 connect=0ms service=${String(g.int(2, 400))}ms status=200 bytes=${String(g.int(100, 9000))}`,
  ],
  'shopify-lookalikes': [
    (g) => `${g.ts()} 401 from admin API for token shpat_${hex(g, 31)}`,
    () => `Your Admin API access token looks like \`shpat_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\`.`,
    (g) => `curl -X POST https://${g.word()}.myshopify.com/admin/api/2025-01/graphql.json -H 'X-Shopify-Access-Token: shpat_<your-access-token>'`,
    (g) => `client_id = "${hex(g, 32)}"\nname = "${g.word()}-app"\napplication_url = "https://${g.word()}.example.com"\nembedded = true\n`,
    (g) => JSON.stringify({ product: { id: g.int(100000000, 999999999), title: `${g.word()} ${g.word()}`, handle: `${g.word()}-${g.word()}`, admin_graphql_api_id: `gid://shopify/Product/${String(g.int(100000000, 999999999))}`, variants: [{ sku: `${g.str(UPPER, 4)}${String(g.int(1000, 9999))}` }] } }),
    (g) => `X-Shopify-Hmac-Sha256: ${g.bytes(32).toString('base64')}\nX-Shopify-Webhook-Id: ${g.uuid()}\nX-Shopify-Shop-Domain: ${g.word()}.myshopify.com\nX-Shopify-Topic: orders/create\n`,
    (g) => `it('rejects malformed tokens', () => {\n  expect(isShopifyToken('shpat_${g.str('ghijklmnopqrstuvwxyz', 32)}')).toBe(false);\n});`,
    (g) => JSON.stringify({ shop_id: `shop_${hex(g, 32)}`, plan: 'basic' }),
    (g) => `Merge branch 'fix/shpat_${hex(g, 8)}-rotation' into main`,
    (g) => `SHOPIFY_STORE_DOMAIN=${g.word()}.myshopify.com\nSHOPIFY_API_VERSION=2025-01\nSHOPIFY_APP_URL=https://${g.word()}.example.com\n`,
    (g) => `shpat_ + 32 hex digits, e.g. shpat_${hex(g, 32).toUpperCase().replace(/[A-F]/g, 'X')}`,
  ],
  'databricks-lookalikes': [
    (g) => `${g.ts()} 403 Invalid access token dapi${hex(g, 31)}`,
    () => `Generate a token in User Settings; it looks like \`dapixxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\`.`,
    () => `export DATABRICKS_TOKEN=dapi<your-token>`,
    (g) => JSON.stringify({ cluster_id: `${String(g.int(1000, 1231))}-${String(g.int(100000, 999999))}-${g.str(LOWER, 5)}${String(g.int(100, 999))}`, spark_version: '15.4.x-scala2.12', node_type_id: 'i3.xlarge', autotermination_minutes: 60, default_tags: { team: g.word() } }),
    (g) => `DATABRICKS_HOST=https://adb-${g.str(DIGITS, 16)}.${String(g.int(1, 19))}.azuredatabricks.net\nDATABRICKS_WAREHOUSE_ID=${hex(g, 16)}\nDATABRICKS_CLUSTER_ID=${String(g.int(1000, 1231))}-${String(g.int(100000, 999999))}-${g.str(LOWER, 8)}\n`,
    (g) => `checksum dapi${hex(g, 32).toUpperCase()} ok`,
    (g) => JSON.stringify({ run_id: g.int(100000000, 999999999), run_page_url: `https://${g.word()}.cloud.databricks.com/#job/${String(g.int(1, 9999))}/run/${String(g.int(1, 9999))}`, git_source: { git_commit: hex(g, 40), git_branch: 'main' } }),
    (g) => `The ${g.word()} sections were counterstained with DAPI (dapi, 1 µg/ml) for ${String(g.int(2, 20))} min.`,
    (g) => `databricks secrets put-secret --scope ${g.word()} --key token\ndatabricks clusters list --output json | jq '.[].cluster_id'`,
    (g) => `[DEFAULT]\nhost = https://${g.word()}.cloud.databricks.com\ntoken = \${DATABRICKS_TOKEN}\n`,
    (g) => `GET /api/2.0/preview/scim/v2/Users?filter=userName+eq+${g.word()}%40example.com`,
  ],
  'atlassian-lookalikes': [
    (g) => {
      const t = atlassianToken(g);
      const bad = t.slice(0, -8) + (t.endsWith('0') ? '1' : '0') + t.slice(-7);
      return `it('rejects a corrupted token', async () => {\n  await expect(client.authenticate('${bad}')).rejects.toThrow(/checksum/);\n});`;
    },
    () => `<input type="password" name="jiraToken" placeholder="ATATT3xFfGF0..." autocomplete="off">`,
    () => `--jira-credential ATATT3xFfGF0-EXAMPLE-NOT-A-REAL-TOKEN`,
    (g) => `${g.ts()} token ATATT3xFfGF0${g.str(B64URL, 171)} has no checksum suffix`,
    (g) => `sample: ATATT3xFfGF0${g.str(B64URL, 171)}=${hex(g, 8)}`,
    (g) => JSON.stringify({ id: String(g.int(10000, 99999)), key: `${g.str(UPPER, 3)}-${String(g.int(1, 999))}`, self: `https://${g.word()}.atlassian.net/rest/api/3/issue/${String(g.int(10000, 99999))}`, fields: { summary: g.sentence(5), status: { name: 'In Progress' } } }),
    (g) => `BITBUCKET_COMMIT=${hex(g, 40)}\nBITBUCKET_BUILD_NUMBER=${String(g.int(1, 9999))}\nBITBUCKET_REPO_UUID={${g.uuid()}}\nBITBUCKET_BRANCH=main\n`,
    (g) => JSON.stringify({ accountId: `${hex(g, 6)}:${g.uuid()}`, displayName: `${g.word()} ${g.word()}`, avatarUrls: { '48x48': `https://avatar-management.services.atlassian.com/${hex(g, 6)}/${g.uuid()}/48` } }),
    (g) => `${g.bytes(90).toString('base64')}ATATT3${g.bytes(150).toString('base64')}`,
    (g) => JSON.stringify({ id: String(g.int(100000, 999999)), type: 'page', title: g.sentence(4), version: { number: g.int(1, 40) }, _links: { base: `https://${g.word()}.atlassian.net/wiki`, webui: `/spaces/${g.str(UPPER, 3)}/pages/${String(g.int(100000, 999999))}` } }),
    (g) => `curl -u ${g.word()}@example.com:$JIRA_API_TOKEN https://${g.word()}.atlassian.net/rest/api/3/myself`,
  ],
  'datadog-lookalikes': [
    (g) => `DD_GIT_COMMIT_SHA=${hex(g, 40)}\nDD_GIT_REPOSITORY_URL=https://github.com/${g.word()}/${g.word()}\nDD_SERVICE=${g.word()}\nDD_ENV=prod\nDD_VERSION=${hex(g, 7)}\n`,
    (g) => `DD_APPLICATION_ID=${g.uuid()}\nDD_SITE=datadoghq.eu\nDD_RUM_SESSION_SAMPLE_RATE=100\n`,
    (g) => JSON.stringify({ 'dd.trace_id': g.str(DIGITS, 19), 'dd.span_id': g.str(DIGITS, 19), dd: { trace_id: hex(g, 32), span_id: hex(g, 16) }, message: g.sentence() }),
    () => `DD_API_KEY=\${DD_API_KEY}\nDD_APP_KEY="<DATADOG_APP_KEY>"\n`,
    () => `datadog_api_key: "{{ vault_datadog_api_key }}"\ndatadog_site: datadoghq.com\n`,
    (g) => `API Keys status\n===============\n  API key ending with ${hex(g, 5)}: API Key valid\n`,
    (g) => JSON.stringify({ id: g.int(1000000, 9999999), name: `${g.word()} CPU high`, query: 'avg(last_5m):avg:system.cpu.user{env:prod} > 90', tags: [`team:${g.word()}`], creator: { email: `${g.word()}@example.com`, id: g.int(100, 9999) } }),
    (g) => `DATADOG_HOST_ID=${hex(g, 32)}\nDATADOG_HOSTNAME=${g.host()}\n`,
    (g) => `${g.ts()} INFO request handled dd.trace_id=${g.str(DIGITS, 19)} dd.span_id=${g.str(DIGITS, 19)} dd.service=${g.word()} dd.env=prod`,
    () => `datadog:\n  apiKeyExistingSecret: datadog-secret\n  appKeyExistingSecret: datadog-secret\n  site: datadoghq.com\n`,
    (g) => `DD_TAGS=env:prod,git.commit.sha:${hex(g, 40)},team:${g.word()}\n`,
  ],
  'azure-lookalikes': [
    (g) => JSON.stringify([{ customKeyIdentifier: null, displayName: 'ci', endDateTime: g.ts(), hint: g.str(ADDED_ALPHABET_AZURE, 3), keyId: g.uuid(), secretText: null, startDateTime: g.ts() }], null, 2),
    (g) => `AZURE_CLIENT_ID=${g.uuid()}\nAZURE_TENANT_ID=${g.uuid()}\nAZURE_SUBSCRIPTION_ID=${g.uuid()}\n`,
    () => `AZURE_CLIENT_SECRET=<client-secret>\nARM_CLIENT_SECRET=\${ARM_CLIENT_SECRET}\n`,
    (g) => `see id ${g.str(B62, 2)}${g.str(DIGITS, 1)}Q~${g.str(B62, 34)} in the audit log`,
    (g) => `marker ${g.str(B62, 4)}Q~${g.str(B62, 34)} is not a secret`,
    (g) => `short ${g.str(B62, 3)}${g.str(DIGITS, 1)}Q~${g.str(B62, 25)} value`,
    (g) => `long ${g.str(B62, 3)}${g.str(DIGITS, 1)}Q~${g.str(B62, 40)} value`,
    () => `Client secrets look like \`abc8Q~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\`: copy the Value column, not the Secret ID.`,
    (g) => JSON.stringify({ keyCredentials: [{ customKeyIdentifier: hex(g, 40).toUpperCase(), displayName: `CN=${g.word()}`, keyId: g.uuid(), type: 'AsymmetricX509Cert', usage: 'Verify' }] }),
    () => `az login --service-principal -u "$AZURE_CLIENT_ID" -p "$AZURE_CLIENT_SECRET" --tenant "$AZURE_TENANT_ID"`,
    (g) => `cp ~/.azure/msal_token_cache.json /tmp/${g.word()}~bak && ls ~/.azure`,
  ],
  'vault-lookalikes': [
    (g) => `VAULT_ADDR=https://vault.${g.host()}:8200\nVAULT_NAMESPACE=admin/${g.word()}\nVAULT_SKIP_VERIFY=false\n`,
    (g) => JSON.stringify({ data: { accessor: g.str(B62, 24), creation_ttl: 2764800, display_name: 'token', entity_id: g.uuid(), policies: ['default'], type: 'service', orphan: false } }, null, 2),
    (g) => `curl -H "X-Vault-Token: $(cat ~/.vault-token)" https://vault.${g.host()}:8200/v1/sys/health`,
    () => `        env:\n          VAULT_TOKEN: \${{ secrets.VAULT_TOKEN }}\n`,
    (g) => `${g.ts()} renewed lease accessor=${g.str(B62, 24)} policy=default type=service`,
    () => `token_ttl: 1h\nclient_token_max_ttl: 768h\n`,
    () => JSON.stringify({ auth: null, data: null, wrap_info: null, warnings: ['client_token is empty'], client_token: null }),
    (g) => `$ vault login -method=oidc role=${g.word()}\nComplete the login via your OIDC provider.`,
    (g) => `path "secret/data/${g.word()}/*" {\n  capabilities = ["read", "list"]\n}\n`,
    () => `auto_auth {\n  method "kubernetes" {\n    config = { role = "app" }\n  }\n  sink "file" {\n    config = { path = "/home/vault/.vault-token" }\n  }\n}\n`,
    (g) => `mv s.${g.str(B62, 24)}.tmp s.${g.str(B62, 24)}.dat`,
  ],
  'putty-lookalikes': [
    (g) => `---- BEGIN SSH2 PUBLIC KEY ----\nComment: "rsa-key-20250101"\n${base64Lines(g.bytes(279)).join('\n')}\n---- END SSH2 PUBLIC KEY ----\n`,
    (g) => `ssh-rsa ${g.bytes(279).toString('base64')} rsa-key-20250101\n`,
    () => `Convert a \`PuTTY-User-Key-File-3\` key for OpenSSH with \`puttygen key.ppk -O private-openssh -o id_rsa\`.`,
    (g) => `PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: ed25519-key-20250101\nPublic-Lines: 2\n${base64Lines(g.bytes(51)).join('\n')}\n(private part removed)\n`,
    () => `PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: <comment>\nPublic-Lines: 6\n<public key>\nPrivate-Lines: 14\n<private key here>\nPrivate-MAC: <mac>\n`,
    (g) => `[HKEY_CURRENT_USER\\Software\\SimonTatham\\PuTTY\\Sessions\\${g.word()}]\n"HostName"="${g.host()}"\n"PublicKeyFile"="C:\\\\Users\\\\${g.word()}\\\\.ssh\\\\id.ppk"\n`,
    (g) => `ssh-ed25519@22:${g.host()} 0x${hex(g, 64)},0x${hex(g, 64)}`,
    (g) => `Pageant: adding key "${g.word()}-key" from C:\\keys\\${g.word()}.ppk`,
    (g) => `[Sessions\\${g.word()}]\nHostName=${g.host()}\nPublicKeyFile=C:%5CUsers%5C${g.word()}%5Ckey.ppk\n`,
    () => `The file ends with a Private-MAC line: an HMAC over the algorithm, encryption, comment and both key blobs.`,
    (g) => `ssh-ed25519 255 SHA256:${g.bytes(32).toString('base64').replace(/=+$/, '')}`,
    (g) => `PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: rsa-key-2025\nPublic-Lines: 6\n${base64Lines(g.bytes(279)).join('\n')}\nPrivate-Lines: 14\n[REDACTED]\nPrivate-MAC: [REDACTED]\n`,
  ],
  'gitlab-lookalikes': [
    () => `vault_gitlab_runner_auth_tokens:\n  runner-01: "glrt-xxxxxxxxxxxxxxxxxxxx"\n  runner-02: "glrt-yyyyyyyyyyyyyyyyyyyy"\n`,
    (g) => `${g.ts()} runner glrtr-${g.str(B62, 12)} verified`,
    (g) => `registration prefix GR1348941${g.str(B62, 10)}`,
    (g) => `[[runners]]\n  name = "${g.word()}-runner"\n  url = "https://gitlab.com/"\n  id = ${String(g.int(1, 999))}\n  token_obtained_at = 2025-0${String(g.int(1, 9))}-1${String(g.int(0, 9))}T10:00:00Z\n  token_expires_at = 0001-01-01T00:00:00Z\n  executor = "docker"\n`,
    () => `Runner authentication tokens have the prefix \`glrt-\`; the deprecated registration tokens start with \`GR1348941\`.`,
    (g) => `See https://gitlab.com/${g.word()}/${g.word()}/-/merge_requests/${String(g.int(1, 9999))} (commit ${hex(g, 40)}).`,
    (g) => `xglpat-${g.str(B62, 20)}`,
    (g) => JSON.stringify({ id: g.int(1, 9999), name: `${g.word()}-ci`, revoked: false, scopes: ['api', 'read_repository'], active: true, expires_at: '2026-01-01', user_id: g.int(1, 9999) }),
    (g) => `CI_COMMIT_SHA=${hex(g, 40)}\nCI_JOB_ID=${String(g.int(1000000, 9999999))}\nCI_PIPELINE_IID=${String(g.int(1, 9999))}\nCI_RUNNER_ID=${String(g.int(1, 9999))}\n`,
    () => `GITLAB_FEATURE_FLAGS_INSTANCE_ID=glffct-<instance-id>\n`,
    () => `https://docs.gitlab.com/user/profile/personal_access_tokens/#glpat-prefix`,
  ],
};

function addedNegatives(seed: number, first: number): Negative[] {
  const out: Negative[] = [];
  for (const [kind, variants] of Object.entries(ADDED_NEGATIVES)) {
    const g = new Gen(seed * 1000 + crc32(kind));
    for (let i = 0; i < 12; i++) {
      const make = variants[i % variants.length] as NegMaker;
      out.push({ id: `n${String(first + out.length + 1).padStart(4, '0')}`, kind, text: make(g) });
    }
  }
  return out;
}

export function generateNegatives(seed = 11): Negative[] {
  const g = new Gen(seed);
  const out: Negative[] = [];
  const kinds = Object.keys(NEGATIVES);
  const per = Math.ceil(1100 / kinds.length);
  for (const kind of kinds) {
    for (let i = 0; i < per; i++) out.push({ id: `n${String(out.length + 1).padStart(4, '0')}`, kind, text: (NEGATIVES[kind] as NegMaker)(g) });
  }
  return [...out, ...addedNegatives(seed, out.length)];
}

function toJsonl(rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const dir = import.meta.dirname;
  const positives = generatePositives();
  const negatives = generateNegatives();
  writeFileSync(join(dir, 'positives.jsonl'), toJsonl(positives));
  writeFileSync(join(dir, 'negatives.jsonl'), toJsonl(negatives));
  console.log(`wrote ${positives.length} positives, ${negatives.length} negatives to ${dir}`);
  // The same rows as an agent would smuggle them out encoded (encoded.ts).
  const { ENCODED_FILES, generateEncodedNegatives, generateEncodedPositives } = await import('./encoded.ts');
  const ep = generateEncodedPositives(positives);
  const en = generateEncodedNegatives(negatives);
  writeFileSync(join(dir, ENCODED_FILES.positives), toJsonl(ep));
  writeFileSync(join(dir, ENCODED_FILES.negatives), toJsonl(en));
  console.log(`wrote ${ep.length} encoded positives, ${en.length} encoded negatives to ${dir}`);
}
