// The detectors sluice ships, written as data in the same shape a platform team uses for its own
// rules (rule-schema.ts). Order matters only to break ties between overlapping matches of equal
// confidence and length: more specific rules come first. Every rule here has positives and
// look-alike negatives in sidecar/test/masking-corpus/.
import { parseRules } from './rule-schema.ts';
import type { RuleSpecInput } from './rule-schema.ts';

// Token boundaries: a secret is not the middle of a longer run of token characters.
const B = '(?<![A-Za-z0-9_-])';
const E = '(?![A-Za-z0-9_-])';
const AWS_PREFIXES = ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'];
const AWS_ID = '(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}';
// Names that say "this holds a secret". Pagination/sync cursors are called tokens too, and are not.
const SECRET_NAME =
  '^(?!.*(?:page|next|continu|sync|cursor|resume|idempoten|publishable|public|csrf_?token_?(?:name|header|field)))' +
  '.*(?:secret|token|passw(?:or)?d|passwd|pwd|api.?key|apikey|access.?key|auth(?!or)|credential|private.?key|' +
  'signing.?key|encryption.?key|master.?key|session.?(?:key|token)|(?:^|[_.-])key$)';
// What may stand between a keyword name and its value when a rule matches from the name: `NAME=v`,
// `NAME: "v"`, Go's `:=`, `\"NAME\": \"v\"` (JSON inside a JSON prompt) and a Kubernetes env entry
// (`- name: NAME` then `value: v` on the next line).
const ASSIGNED = `\\\\?["']?(?:[ \\t]*:?=|[ \\t]*:|[ \\t]*\\r?\\n[ \\t]*value[ \\t]*:)[ \\t]*\\\\?["']?`;
// A line break in a key file as written to disk, JSON-escaped (`\n`, `\r\n`) or indented in a YAML block.
const NL = '(?:\\r?\\n|\\\\r\\\\n|\\\\n)[ \\t]*';
const HEX32 = '[0-9a-f]{32}';
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
// Matched from the `://` (the keyword); the scheme is checked by lookbehind so the regex starts there.
const URL_USERINFO = `://(?<user>[^\\s:/@?#'"<>]{0,128}):(?<secret>[^\\s/@?#'"<>]{1,128})@`;

const rules: RuleSpecInput[] = [
  {
    id: 'aws-key-pair',
    description: 'AWS secret access key written next to its access key id (credentials.csv, logs, env dumps)',
    confidence: 'high',
    keywords: AWS_PREFIXES,
    pattern: `${AWS_ID}["']?[\\s,;:|=]{1,6}["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
    maxLength: 90,
    validator: 'random',
  },
  {
    id: 'aws-secret-access-key',
    description: 'AWS secret access key assigned to an AWS-named key (env, ini, JSON from STS)',
    confidence: 'high',
    kind: 'assignment',
    names: 'aws.{0,24}secret|secret.?access.?key',
    value: '(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])',
    validator: 'random',
  },
  {
    id: 'aws-access-key-id',
    description: 'AWS access key id (long-term AKIA, temporary ASIA)',
    confidence: 'medium',
    keywords: AWS_PREFIXES,
    pattern: `(?<![A-Za-z0-9/+])${AWS_ID}(?![A-Za-z0-9/+])`,
    maxLength: 21,
  },
  {
    id: 'github-pat-classic',
    description: 'GitHub personal access token (classic), CRC32-checked',
    confidence: 'high',
    keywords: ['ghp_'],
    pattern: `${B}ghp_[A-Za-z0-9]{36}${E}`,
    maxLength: 41,
    validator: 'token-checksum',
  },
  {
    id: 'github-oauth-token',
    description: 'GitHub OAuth app access token, CRC32-checked',
    confidence: 'high',
    keywords: ['gho_'],
    pattern: `${B}gho_[A-Za-z0-9]{36}${E}`,
    maxLength: 41,
    validator: 'token-checksum',
  },
  {
    id: 'github-app-token',
    description: 'GitHub App user-to-server, installation and refresh tokens (ghu_, ghs_, ghr_), CRC32-checked',
    confidence: 'high',
    keywords: ['ghu_', 'ghs_', 'ghr_'],
    pattern: `${B}gh[usr]_[A-Za-z0-9]{36}${E}`,
    maxLength: 41,
    validator: 'token-checksum',
  },
  {
    id: 'github-pat-fine-grained',
    description: 'GitHub fine-grained personal access token',
    confidence: 'high',
    keywords: ['github_pat_'],
    pattern: `${B}github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}${E}`,
    maxLength: 94,
  },
  {
    id: 'gitlab-token',
    description: 'GitLab personal, deploy, runner (auth and registration), trigger, feed, incoming-mail, agent, OAuth, CI job, SCIM and feature-flag tokens, legacy and routable',
    confidence: 'high',
    keywords: ['glpat-', 'gldt-', 'glrt-', 'glrtr-', 'glptt-', 'glft-', 'glimt-', 'glagent-', 'gloas-', 'glcbt-', 'glsoat-', 'glffct-', 'GR1348941'],
    // A `-` may precede: self-managed instances can prefix every token (`SIE-glpat-...`). Routable
    // tokens end in `.<2 base36>.<length + CRC32, base36>`.
    pattern: `(?<![A-Za-z0-9_])(?:gl(?:pat|dt|rtr|rt|ptt|ft|imt|agent|oas|cbt|soat|ffct)-[A-Za-z0-9_-]{20,300}(?:\\.[0-9a-z]{2}\\.[0-9a-z]{7,9})?|GR1348941[A-Za-z0-9_-]{20,64})${E}`,
    maxLength: 330,
    // Documentation fillers: one character repeated (`glrt-xxxxxxxxxxxxxxxxxxxx`).
    allowlist: ['^(?:gl[a-z]+-|GR1348941)([A-Za-z0-9_])\\1+$'],
  },
  {
    id: 'slack-token',
    description: 'Slack bot, user, app-level and legacy tokens',
    confidence: 'high',
    keywords: ['xoxb-', 'xoxp-', 'xoxa-', 'xoxr-', 'xoxs-', 'xoxe-', 'xoxo-', 'xapp-'],
    pattern: '(?<![A-Za-z0-9])(?:xox[abpesor]-(?:[0-9]{6,14}-){1,3}[A-Za-z0-9]{16,64}|xapp-[0-9]-[A-Z0-9]{8,14}-[0-9]{8,14}-[a-z0-9]{32,80})(?![A-Za-z0-9])',
    maxLength: 200,
  },
  {
    id: 'slack-webhook',
    description: 'Slack incoming webhook / workflow trigger URL (the path is the credential)',
    confidence: 'high',
    keywords: ['hooks.slack.com/'],
    pattern: 'https://hooks\\.slack\\.com/(?:services|workflows|triggers)/(?<secret>[A-Za-z0-9_/]{20,160})',
    lookbehind: 8,
    maxLength: 200,
  },
  {
    id: 'stripe-key',
    description: 'Stripe secret and restricted keys (live and test) and webhook signing secrets',
    confidence: 'high',
    keywords: ['sk_live_', 'rk_live_', 'sk_test_', 'rk_test_', 'whsec_'],
    pattern: '(?<![A-Za-z0-9_])(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,247}|whsec_[A-Za-z0-9+/=]{32,88})(?![A-Za-z0-9])',
    maxLength: 256,
  },
  {
    id: 'google-api-key',
    description: 'Google API key (Maps, Firebase, Gemini, ...)',
    confidence: 'high',
    keywords: ['AIza'],
    pattern: `${B}AIza[A-Za-z0-9_-]{35}${E}`,
    maxLength: 40,
  },
  {
    id: 'gcp-service-account',
    description: 'Private key field of a Google service-account JSON key file',
    confidence: 'high',
    keywords: ['private_key'],
    // Also matches the file JSON-escaped once more (a key pasted into an LLM prompt).
    pattern:
      '\\\\?"private_key\\\\?"\\s*:\\s*\\\\?"(?<secret>-----BEGIN PRIVATE KEY-----[A-Za-z0-9+/=\\\\]{64,12000}-----END PRIVATE KEY-----(?:\\\\{1,2}n)?)',
    lookbehind: 2,
    maxLength: 12200,
  },
  {
    id: 'private-key',
    description: 'PEM private keys (PKCS#1/#8, EC, DSA, encrypted), OpenSSH and PGP private key blocks',
    confidence: 'high',
    keywords: ['-----BEGIN'],
    pattern:
      '-----BEGIN (?<kind>[A-Z0-9 ]{0,24})PRIVATE KEY(?: BLOCK)?-----(?<secret>[A-Za-z0-9+/=\\s:,.()\\\\-]{32,16300}?)-----END \\k<kind>PRIVATE KEY(?: BLOCK)?-----',
    maxLength: 16384,
  },
  {
    id: 'private-key-base64',
    description: 'Base64 of a PEM private key (kubeconfig client-key-data, Helm values, Secrets data)',
    confidence: 'high',
    keywords: ['LS0tLS1CRUdJTi'],
    pattern: '(?<![A-Za-z0-9+/])LS0tLS1CRUdJTi[A-Za-z0-9+/]{32,22000}={0,2}',
    maxLength: 22100,
    validator: 'base64-private-key',
  },
  {
    id: 'openai-api-key',
    description: 'OpenAI API keys (user, project, service-account, admin); all carry the T3BlbkFJ marker',
    confidence: 'high',
    keywords: ['T3BlbkFJ'],
    pattern: `${B}sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{16,200}T3BlbkFJ[A-Za-z0-9_-]{16,200}${E}`,
    lookbehind: 220,
    maxLength: 210,
  },
  {
    id: 'anthropic-api-key',
    description: 'Anthropic API and admin keys',
    confidence: 'high',
    keywords: ['sk-ant-'],
    pattern: `${B}sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_-]{80,120}${E}`,
    maxLength: 140,
  },
  {
    id: 'npm-token',
    description: 'npm access token (npm_), CRC32-checked',
    confidence: 'high',
    keywords: ['npm_'],
    pattern: `(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}${E}`,
    maxLength: 41,
    validator: 'token-checksum',
  },
  {
    id: 'npmrc-auth',
    description: '.npmrc _authToken / _auth / _password values (legacy UUID tokens, basic auth)',
    confidence: 'high',
    kind: 'assignment',
    names: '^_(?:authToken|auth|password)$',
    separators: ['='],
    value: '(?<secret>(?!\\$\\{)[^\\s\'"]{8,512})',
  },
  {
    id: 'pypi-token',
    description: 'PyPI and TestPyPI API tokens (macaroons)',
    confidence: 'high',
    keywords: ['pypi-AgEIcHlwaS5vcmc', 'pypi-AgENdGVzdC5weXBpLm9yZw'],
    pattern: `${B}pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,1000}${E}`,
    maxLength: 1030,
  },
  {
    id: 'huggingface-token',
    description: 'Hugging Face user access token',
    confidence: 'high',
    keywords: ['hf_'],
    pattern: `(?<![A-Za-z0-9_])hf_[A-Za-z]{34}${E}`,
    maxLength: 38,
  },
  {
    id: 'vault-token',
    description: 'HashiCorp Vault service, batch and recovery tokens (hvs./hvb./hvr.); legacy s. service tokens in a Vault context',
    confidence: 'high',
    keywords: ['hvs.', 'hvb.', 'hvr.', 'VAULT_TOKEN', 'vault_token', 'X-Vault-Token', 'x-vault-token', 'client_token', 'vault login '],
    // Legacy `s.` + 24 base62 (`.xxxxx` names a namespace) is too short and plain to find alone:
    // only after VAULT_TOKEN / X-Vault-Token / "client_token" (login responses) or `vault login`.
    pattern:
      `${B}hv[sbr]\\.[A-Za-z0-9_-]{90,200}${E}|` +
      `(?:(?:VAULT_TOKEN|vault_token|[Xx]-[Vv]ault-[Tt]oken|client_token)${ASSIGNED}|vault login (?:-[a-z-]{1,24}(?:=[^\\s]{1,64})? ){0,4}(?:token=)?)` +
      '(?<secret>s\\.[A-Za-z0-9]{24}(?:\\.[A-Za-z0-9]{5})?)(?![A-Za-z0-9_.-])',
    maxLength: 210,
  },
  {
    id: 'sendgrid-api-key',
    description: 'SendGrid API key',
    confidence: 'high',
    keywords: ['SG.'],
    pattern: `${B}SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}${E}`,
    maxLength: 70,
  },
  {
    id: 'digitalocean-token',
    description: 'DigitalOcean personal access, OAuth and refresh tokens',
    confidence: 'high',
    keywords: ['dop_v1_', 'doo_v1_', 'dor_v1_'],
    pattern: `${B}do[por]_v1_[a-f0-9]{64}${E}`,
    maxLength: 72,
  },
  {
    id: 'twilio-api-key',
    description: 'Twilio API key SID (SK + 32 hex), the identifier half of an API key pair',
    confidence: 'medium',
    keywords: ['SK'],
    pattern: `${B}SK${HEX32}${E}`,
    maxLength: 34,
    validator: 'random-hex',
  },
  {
    id: 'twilio-auth-token',
    description: 'Twilio account auth token (32 hex) assigned to a Twilio-named key',
    confidence: 'high',
    kind: 'assignment',
    names: 'twilio.{0,32}(?:token|secret)',
    value: `(?<secret>${HEX32})${E}`,
    validator: 'random-hex',
  },
  {
    id: 'mailgun-api-key',
    description: 'Mailgun private API key: key- + 32 hex anywhere; the newer 32-8-8 hex form after api: (basic auth) or under a MAILGUN_* name',
    confidence: 'high',
    // Not `mailgun`/`Mailgun`: a keyword on `g` or `M` costs a scan pass over every body. Lower-case
    // names (mailgun_api_key: ...) are left to generic-secret, which masks the 50-character value.
    keywords: ['key-', 'api:', 'MAILGUN'],
    pattern:
      `(?:(?<![A-Za-z0-9_-])api:|MAILGUN[A-Za-z0-9_.-]{0,32}${ASSIGNED})(?<secret>key-${HEX32}|${HEX32}-[0-9a-f]{8}-[0-9a-f]{8})${E}|` +
      `${B}key-${HEX32}${E}`,
    maxLength: 120,
    validator: 'random-hex',
  },
  {
    id: 'heroku-api-key',
    description: 'Heroku API key in the current format (HRKU-AA...)',
    confidence: 'high',
    keywords: ['HRKU-'],
    pattern: `${B}HRKU-AA[A-Za-z0-9_-]{42}(?:[A-Za-z0-9_-]{16})?${E}`,
    maxLength: 66,
    validator: 'random',
  },
  {
    id: 'heroku-api-key-legacy',
    description: 'Heroku API key / OAuth token in the older UUID form, assigned to a Heroku-named key',
    confidence: 'high',
    kind: 'assignment',
    // Not `auth`: HEROKU_AUTHORIZATION_ID holds the id of a token, a UUID that grants nothing.
    names: 'heroku.{0,24}(?:api.?key|token|secret|passw(?:or)?d)',
    value: `(?<secret>${UUID})${E}`,
    validator: 'random-hex',
  },
  {
    id: 'shopify-token',
    description: 'Shopify Admin API, custom-app and private-app access tokens and shared secrets (shpat_, shpca_, shppa_, shpss_)',
    confidence: 'high',
    keywords: ['shpat_', 'shpca_', 'shppa_', 'shpss_'],
    pattern: `${B}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}${E}`,
    maxLength: 38,
    validator: 'random-hex',
  },
  {
    id: 'databricks-token',
    description: 'Databricks personal access token (dapi + 32 hex, optional -N suffix)',
    confidence: 'high',
    keywords: ['dapi'],
    pattern: `${B}dapi${HEX32}(?:-[0-9])?${E}`,
    maxLength: 38,
    validator: 'random-hex',
  },
  {
    id: 'atlassian-api-token',
    description: 'Atlassian (Jira, Confluence, Bitbucket) API token, CRC32-checked',
    confidence: 'high',
    keywords: ['ATATT3'],
    pattern: `${B}ATATT3[A-Za-z0-9_=-]{150,300}=[0-9A-F]{8}${E}`,
    maxLength: 320,
    validator: 'crc32-suffix',
  },
  {
    id: 'datadog-api-key',
    description: 'Datadog API key (32 hex) under a Datadog name (DD_API_KEY, the DD-API-KEY header, datadog_api_key)',
    confidence: 'high',
    kind: 'assignment',
    names: '(?:^|[^a-z0-9])dd[_.-]?api[_.-]?key$|datadog.{0,24}api.?key$',
    value: `(?<secret>${HEX32})${E}`,
    validator: 'random-hex',
  },
  {
    id: 'datadog-app-key',
    description: 'Datadog application key (40 hex) under a Datadog name (DD_APP_KEY, the DD-APPLICATION-KEY header)',
    confidence: 'high',
    kind: 'assignment',
    names: '(?:^|[^a-z0-9])dd[_.-]?app(?:lication)?[_.-]?key$|datadog.{0,24}app(?:lication)?.?key$',
    value: `(?<secret>[0-9a-f]{40})${E}`,
    validator: 'random-hex',
  },
  {
    id: 'azure-ad-client-secret',
    description: 'Microsoft Entra ID (Azure AD) application client secret: three characters, a digit, Q~, 31-34 more',
    confidence: 'high',
    keywords: ['Q~'],
    pattern: '(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])',
    lookbehind: 4,
    maxLength: 40,
    validator: 'random',
  },
  {
    id: 'putty-private-key',
    description: 'PuTTY private key file (.ppk v2/v3): the Private-Lines block and its Private-MAC',
    confidence: 'high',
    keywords: ['PuTTY-User-Key-File-'],
    // Header lines (`Name: value`) and public lines up to `Private-Lines: N`, then base64 lines up to
    // the MAC, which ends the match: a key cut off before it stays undecided in a stream.
    pattern:
      `PuTTY-User-Key-File-[23]: [A-Za-z0-9@.-]{3,64}${NL}(?:[A-Za-z0-9-]{2,32}: [^\\r\\n\\\\]{0,256}${NL}|[A-Za-z0-9+/=]{1,64}${NL}){2,80}?` +
      `Private-Lines: [0-9]{1,4}${NL}(?<secret>(?:[A-Za-z0-9+/=]{1,64}${NL}){1,200}Private-MAC: [0-9a-f]{40,64})(?![0-9a-f])`,
    maxLength: 16384,
  },
  {
    id: 'azure-connection-string',
    description: 'Azure storage AccountKey / Service Bus SharedAccessKey in connection strings',
    confidence: 'high',
    keywords: ['AccountKey=', 'SharedAccessKey='],
    pattern: '(?:AccountKey|SharedAccessKey)=(?<secret>[A-Za-z0-9+/]{40,100}={0,2})',
    maxLength: 120,
  },
  {
    id: 'jwt',
    description: 'Signed JSON Web Token (bearer/ID/service-account tokens); header and payload must decode',
    confidence: 'high',
    keywords: ['eyJ'],
    pattern: `${B}eyJ[A-Za-z0-9_-]{8,4096}\\.ey[A-Za-z0-9_-]{8,8192}\\.[A-Za-z0-9_-]{16,2048}${E}`,
    maxLength: 14600,
    validator: 'jwt',
  },
  {
    id: 'connection-string-password',
    description: 'Password in a database/broker connection URL (postgres://user:pass@host, mongodb+srv, redis, amqp, ...)',
    confidence: 'high',
    keywords: ['://'],
    pattern:
      '(?<=(?<![A-Za-z0-9+.-])(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\\+srv)?|rediss?|amqps?|mssql|sqlserver|cockroachdb|clickhouse|neo4j(?:\\+s)?|couchbases?|cassandra|nats|kafka|ldaps?|snowflake|oracle|db2|memcached)(?:\\+[a-z0-9]+)?)' +
      URL_USERINFO,
    context: 48,
    maxLength: 300,
  },
  {
    id: 'connection-string-kv',
    description: 'Password=... in key=value connection strings (ADO.NET, ODBC, JDBC properties)',
    confidence: 'high',
    keywords: ['password=', 'pwd='],
    keywordsIgnoreCase: true,
    pattern:
      '(?:Server|Data Source|Host|Address|Addr|Network Address|DSN|Driver)\\s*=[^;"\'\\n]{1,200};(?:[^;"\'\\n]{0,200};){0,10}\\s*(?:Password|Pwd)\\s*=\\s*(?<secret>[^;"\'\\s]{1,128})',
    flags: 'i',
    lookbehind: 512,
    maxLength: 140,
  },
  {
    id: 'url-password-param',
    description: 'password=... in a URL query or JDBC-style parameter list',
    confidence: 'medium',
    keywords: ['password=', 'passwd=', 'pwd='],
    keywordsIgnoreCase: true,
    pattern: '[?&;](?:password|passwd|pwd)=(?<secret>[^&;#\'"\\s<>]{4,128})',
    flags: 'i',
    lookbehind: 1,
    maxLength: 140,
  },
  {
    id: 'url-basic-auth',
    description: 'Credentials in the userinfo of an http(s)/git/ftp/ssh URL (https://user:token@host)',
    confidence: 'high',
    keywords: ['://'],
    pattern: `(?<=(?<![A-Za-z0-9+.-])(?:https?|ftps?|sftp|git|ssh|wss?|svn|smb|git\\+https?|git\\+ssh))${URL_USERINFO}`,
    context: 48,
    maxLength: 300,
  },
  {
    id: 'authorization-header',
    description: 'Authorization / API-key request headers (Bearer, Basic, token schemes) in logs, curl lines, HAR, JSON',
    confidence: 'medium',
    kind: 'assignment',
    names: '^(?:proxy-)?authorization$|^x-api-key$|^api-key$|^x-auth-token$|^private-token$|^x-goog-api-key$|^x-functions-key$',
    value: '(?:(?:Bearer|Basic|token|Token|Bot|SSWS|Splunk|GenieKey|ApiKey)\\s+)?(?<secret>[A-Za-z0-9._~+/=-]{12,4096})',
  },
  {
    id: 'dotenv-secret',
    description: 'KEY=value lines (.env, shell exports, Dockerfile ENV, systemd) whose key names a secret',
    confidence: 'medium',
    kind: 'assignment',
    names:
      '(?:secret|token|passw(?:or)?d|passwd|pwd|_pass|api_?key|apikey|access_?key|private_?key|secret_?key|auth_?key|signing_?key|encryption_?key|master_?key|client_?secret|webhook_?secret)$',
    separators: ['='],
    lineStart: true,
    // `#` starts a comment only after a blank; `pa#ss` is a value.
    value: '(?<secret>(?![./~#]|[0-9]+\\s*$)[^\\s\'"`;(){}]{6,512})(?=\\s*(?:#.*)?$)',
    validator: 'password',
    maxLength: 600,
  },
  {
    id: 'password-assignment',
    description: 'A password written into config or code (YAML, JSON, ini, kubeconfig basic-auth users)',
    confidence: 'medium',
    kind: 'assignment',
    names: '(?:^|[_.-]|[a-z])(?:passw(?:or)?d|passwd|pwd)$|^pass$',
    value: '(?<secret>(?![$<%{(\\[*]|[A-Za-z_][A-Za-z0-9_]*\\s*[(.,;)])(?:(?![\'",;`])[\\x21-\\x7e]){6,256})(?=\\s*(?:#.*)?$)',
    validator: 'password',
    maxLength: 300,
  },
  {
    id: 'generic-secret',
    description: 'High-entropy value assigned to a secret-named key (fallback for formats without a rule)',
    confidence: 'low',
    kind: 'assignment',
    names: SECRET_NAME,
    value: '(?<secret>[A-Za-z0-9+/=_.~-]{16,1024})(?![A-Za-z0-9+/=_.~-])',
    validator: 'random',
    // Token-shaped values that failed their format's checksum are fixtures, not secrets (a valid
    // one is reported by its own rule).
    allowlist: ['^(?:gh[pousr]|npm)_[A-Za-z0-9]{36}$'],
    maxLength: 1100,
  },
];

export const BUILTIN_RULES = parseRules(rules, 'builtin-rules');
export const BUILTIN_RULE_IDS: readonly string[] = Object.freeze(BUILTIN_RULES.map((r) => r.id));
