// Generates the labelled masking corpus: fake-but-valid-format secrets in realistic surroundings
// (positives.jsonl) and close look-alikes that must not be masked (negatives.jsonl). Deterministic:
// a seeded PRNG, so re-running rewrites the same files. No real credential is in here; every secret
// is random bytes in the right shape (checksums computed where the format has one).
//
//   node sidecar/test/masking-corpus/generate.ts          # rewrites the .jsonl files beside it
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { base62Crc32 } from '../../src/masking/validators.ts';
import { prng } from '../support/prng.ts';

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
  return out;
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

export function generateNegatives(seed = 11): Negative[] {
  const g = new Gen(seed);
  const out: Negative[] = [];
  const kinds = Object.keys(NEGATIVES);
  const per = Math.ceil(1100 / kinds.length);
  for (const kind of kinds) {
    for (let i = 0; i < per; i++) out.push({ id: `n${String(out.length + 1).padStart(4, '0')}`, kind, text: (NEGATIVES[kind] as NegMaker)(g) });
  }
  return out;
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
}
