// Outbound DLP through decoded views: every leak form of issue 16 (base64, MIME base64 wrapped,
// base64url, hex, percent-encoding of every byte, JSON \u escapes, UTF-16LE/BE, format characters
// inside the token, a secret split across two JSON fields, encodings nested) is found and masked in
// its own encoding — the output decodes to the masked text and holds no piece of the secret —
// look-alikes that are not secrets do not trip, and the bounds fail closed.
import { describe, expect, test } from '@jest/globals';
import { createMasker, isTextLike, maskAuditText, scanDecoded } from '../../src/masking/index.ts';
import { secretsGone } from '../masking-corpus/evaluate.ts';
import { prng } from '../../../testkit/prng.ts';

const masker = createMasker('*');
// Fake but well-formed credentials (the same shapes the corpus uses).
const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';
const CREDS = `aws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\n`;

const every = (s: string, f: (c: string) => string): string => [...s].map(f).join('');
const pct = (s: string): string => every(s, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
const uesc = (s: string): string => every(s, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const wrap = (s: string, n: number, sep: string): string => s.replace(new RegExp(`(.{${n}})`, 'g'), `$1${sep}`).replace(new RegExp(`${sep.replace(/\\/g, '\\\\')}$`), '');
const contentOf = (o: Buffer): string => (JSON.parse(o.toString()) as { messages: { content: string }[] }).messages[0]!.content;
const prompt = (content: string): string => `{"model":"gpt-5","messages":[{"role":"user","content":"${content}"}]}`;

interface Form {
  name: string;
  body: Buffer;
  via: string;
  /** The masked body decoded the way its receiver would, to check the view itself is masked. */
  view: (out: Buffer) => string;
}

const b64 = Buffer.from(CREDS).toString('base64');
const FORMS: Form[] = [
  { name: 'base64 in a JSON prompt', body: Buffer.from(prompt(`decode and use: ${b64}`)), via: 'base64', view: (o) => Buffer.from(/use: ([A-Za-z0-9+/=]+)/.exec(o.toString())![1]!, 'base64').toString() },
  { name: 'base64url', body: Buffer.from(`creds=${Buffer.from(`${CREDS}\u00ff\u00fe?>`, 'latin1').toString('base64url')}`), via: 'base64url', view: (o) => Buffer.from(o.toString().slice(6), 'base64url').toString() },
  {
    name: 'MIME part, Content-Transfer-Encoding: base64, wrapped at 76 with CRLF',
    body: Buffer.from(`--xyz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n${wrap(b64, 76, '\r\n')}\r\n--xyz--\r\n`),
    via: 'base64',
    view: (o) => Buffer.from(o.toString().split('\r\n\r\n')[1]!.split('\r\n--xyz')[0]!.replace(/\r\n/g, ''), 'base64').toString(),
  },
  { name: 'base64 wrapped with JSON-escaped line breaks', body: Buffer.from(prompt(wrap(b64, 64, '\\n'))), via: 'base64', view: (o) => Buffer.from(contentOf(o).replace(/\n/g, ''), 'base64').toString() },
  {
    name: 'MIME part inside a JSON prompt (CRLF escaped, the run glued to the escape)',
    body: Buffer.from(JSON.stringify({ content: `--b\r\nContent-Transfer-Encoding: base64\r\n\r\n${wrap(b64, 76, '\r\n')}\r\n--b--` })),
    via: 'base64',
    view: (o) => Buffer.from((JSON.parse(o.toString()) as { content: string }).content.split('\r\n\r\n')[1]!.split('\r\n--b')[0]!.replace(/\r\n/g, ''), 'base64').toString(),
  },
  { name: 'percent-encoding after a JSON-escaped line break', body: Buffer.from(JSON.stringify({ content: `line one\n${pct(AWS_ID)}\tnext` })), via: 'percent', view: (o) => decodeURIComponent((JSON.parse(o.toString()) as { content: string }).content) },
  { name: 'zero-width after a JSON-escaped line break', body: Buffer.from(JSON.stringify({ content: `line one\n${AWS_ID.slice(0, 7)}\u200b${AWS_ID.slice(7)}\nnext` })), via: 'format-chars', view: (o) => (JSON.parse(o.toString()) as { content: string }).content },
  { name: 'hex', body: Buffer.from(prompt(`bytes: ${Buffer.from(CREDS).toString('hex')}`)), via: 'hex', view: (o) => Buffer.from(/bytes: ([0-9a-f]+)/.exec(o.toString())![1]!, 'hex').toString() },
  { name: 'HEX upper case', body: Buffer.from(`k=${Buffer.from(AWS_ID).toString('hex').toUpperCase()}`), via: 'hex', view: (o) => Buffer.from(o.toString().slice(2), 'hex').toString() },
  { name: 'percent-encoding of every byte', body: Buffer.from(`q=${pct(CREDS)}`), via: 'percent', view: (o) => decodeURIComponent(o.toString().slice(2)) },
  { name: 'JSON \\u escapes of every character', body: Buffer.from(prompt(uesc(CREDS))), via: 'escape', view: (o) => JSON.parse(o.toString()).messages[0].content as string },
  { name: 'UTF-16LE', body: Buffer.from(`here are my creds: ${CREDS}`, 'utf16le'), via: 'utf16le', view: (o) => o.toString('utf16le') },
  { name: 'UTF-16BE', body: Buffer.from(`here are my creds: ${CREDS}`, 'utf16le').swap16(), via: 'utf16be', view: (o) => Buffer.from(o).swap16().toString('utf16le') },
  { name: 'zero-width space inside the token', body: Buffer.from(prompt(`key ${AWS_ID.slice(0, 7)}\u200b${AWS_ID.slice(7)}`)), via: 'format-chars', view: (o) => JSON.parse(o.toString()).messages[0].content as string },
  {
    name: 'soft hyphen, word joiner, BOM and bidi marks inside the tokens',
    body: Buffer.from(prompt(`id ${AWS_ID.slice(0, 4)}\u00ad${AWS_ID.slice(4, 9)}\u2060${AWS_ID.slice(9)} secret ${AWS_SECRET.slice(0, 10)}\ufeff${AWS_SECRET.slice(10, 20)}\u200e${AWS_SECRET.slice(20)}`)),
    via: 'format-chars',
    view: (o) => JSON.parse(o.toString()).messages[0].content as string,
  },
  { name: 'the token split across two JSON fields', body: Buffer.from(JSON.stringify({ a: `the key starts ${AWS_ID.slice(0, 9)}`, b: `${AWS_ID.slice(9)} and that is all` })), via: 'json-join', view: (o) => Object.values(JSON.parse(o.toString()) as Record<string, string>).join('') },
  { name: 'percent-encoded base64', body: Buffer.from(`v=${encodeURIComponent(b64)}`), via: 'base64', view: (o) => Buffer.from(decodeURIComponent(o.toString().slice(2)), 'base64').toString() },
  { name: 'base64 of UTF-16LE (PowerShell -EncodedCommand)', body: Buffer.from(`powershell -enc ${Buffer.from(`$k='${AWS_ID}'`, 'utf16le').toString('base64')}`), via: 'base64', view: (o) => Buffer.from(o.toString().split(' ').at(-1)!, 'base64').toString('utf16le') },
  { name: 'hex of base64', body: Buffer.from(`blob ${Buffer.from(b64).toString('hex')}`), via: 'hex', view: (o) => Buffer.from(Buffer.from(o.toString().slice(5), 'hex').toString(), 'base64').toString() },
  { name: '\\u escapes of a zero-width-split token', body: Buffer.from(prompt(uesc(`${AWS_ID.slice(0, 5)}\u200b${AWS_ID.slice(5)}`))), via: 'escape', view: (o) => JSON.parse(o.toString()).messages[0].content as string },
];

describe('decoded views find every leak form', () => {
  test.each(FORMS.map((f) => [f.name, f] as const))('%s', (_name, form) => {
    // The raw rules alone miss it (that is the bypass).
    expect(masker.maskBuffer(form.body).findings.filter((f) => f.rule.startsWith('aws-'))).toEqual([]);
    const scan = scanDecoded(form.body, masker.scanner, { mode: 'scan' });
    expect(scan.unscannable).toBeUndefined();
    expect(scan.findings.length).toBeGreaterThan(0);
    expect(scan.findings.some((f) => f.via.includes(form.via as never))).toBe(true);
    for (const f of scan.findings) expect(f.rule).toMatch(/^aws-/);

    const masked = scanDecoded(form.body, masker.scanner, { mode: 'mask', maskRaw: true });
    expect(masked.unmaskable).toBeUndefined();
    const view = form.view(masked.output);
    // The receiver's decoding of the masked body shows the redaction and no piece of any secret.
    expect(view).toContain('[REDACTED:aws-');
    expect(secretsGone(view, form.name.includes('split') ? [AWS_ID] : [AWS_ID, ...(view.includes('aws_secret') ? [AWS_SECRET] : [])])).toBe(true);
    // Nor does any other decoding of it.
    expect(scanDecoded(masked.output, masker.scanner, { mode: 'scan', maskRaw: true }).findings).toEqual([]);
  });

  test('masking keeps everything around the encoded secret byte for byte', () => {
    const body = Buffer.from(`{"a":"keep me %41%42","b":"q=${pct(AWS_ID)}&x=%2F%2B","c":"and me"}`);
    const out = scanDecoded(body, masker.scanner, { mode: 'mask' }).output.toString();
    expect(out).toBe(`{"a":"keep me %41%42","b":"q=%5BREDACTED%3Aaws-access-key-id%5D&x=%2F%2B","c":"and me"}`);
  });

  test('line-wrapped base64 is rebuilt with the same line length, separator and padding', () => {
    const long = Buffer.from(`${'lorem ipsum dolor sit amet '.repeat(6)}${CREDS}${'consectetur adipiscing '.repeat(6)}`).toString('base64');
    const body = Buffer.from(`Content-Transfer-Encoding: base64\r\n\r\n${wrap(long, 76, '\r\n')}\r\n`);
    const out = scanDecoded(body, masker.scanner, { mode: 'mask' }).output.toString();
    const lines = out.split('\r\n\r\n')[1]!.trim().split('\r\n');
    for (const l of lines.slice(0, -1)) expect(l).toHaveLength(76);
    expect(lines.at(-1)!.length).toBeLessThanOrEqual(76);
    expect(Buffer.from(lines.join(''), 'base64').toString()).toContain('[REDACTED:aws-');
  });

  test('secrets in both raw and encoded form are each reported once per place', () => {
    const body = Buffer.from(`raw ${AWS_ID} encoded ${Buffer.from(AWS_ID).toString('hex')}`);
    const r = scanDecoded(body, masker.scanner, { mode: 'mask', maskRaw: true });
    expect(r.findings.map((f) => f.via.join('>') || 'raw').sort()).toEqual(['hex', 'raw']);
    expect(secretsGone(r.output.toString(), [AWS_ID])).toBe(true);
  });
});

describe('look-alikes do not trip', () => {
  const r = prng(16);
  const rand = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
  const hex = (n: number): string => rand(n).toString('hex');
  const uuid = (): string => {
    const h = hex(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
  };
  const cases: [string, () => string][] = [
    ['random base64 blobs', () => rand(24 + Math.floor(r() * 600)).toString('base64')],
    ['random base64url blobs', () => rand(16 + Math.floor(r() * 200)).toString('base64url')],
    ['git SHAs and SHA-256 digests', () => `commit ${hex(20)} tree ${hex(20)} sha256:${hex(32)}`],
    ['UUIDs', () => `{"id":"${uuid()}","trace":"${hex(16)}","parent":"${uuid()}"}`],
    ['percent-encoded URLs', () => `https://example.com/search?q=${encodeURIComponent(`how to ${hex(4)} in typescript & co`)}&page=2`],
    ['JSON with \\u escapes of ordinary text', () => JSON.stringify({ text: `caf\u00e9 \u2014 ${hex(3)} \u00e0 la carte` }).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)],
    ['a PNG data URI', () => `<img src="data:image/png;base64,${Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), rand(300)]).toString('base64')}">`],
    ['UTF-16LE prose', () => Buffer.from(`The quick brown fox ${hex(4)} jumps over the lazy dog.`, 'utf16le').toString('latin1')],
    ['text with a zero-width joiner in an emoji', () => `family: \u{1F468}\u200d\u{1F469}\u200d\u{1F467} and a soft\u00adhyphen`],
    ['MIME base64 of ordinary text', () => wrap(Buffer.from(`Dear team, the ${hex(4)} report is attached. `.repeat(10)).toString('base64'), 76, '\r\n')],
  ];
  test.each(cases)('%s', (_name, make) => {
    for (let i = 0; i < 50; i++) {
      const text = make();
      const body = Buffer.from(text, _name.startsWith('UTF-16') ? 'latin1' : 'utf8');
      const s = scanDecoded(body, masker.scanner, { mode: 'scan', maskRaw: true });
      expect({ text, findings: s.findings, unscannable: s.unscannable }).toEqual({ text, findings: [], unscannable: undefined });
    }
  });
});

describe('bounds fail closed', () => {
  const nest = (s: string, n: number): string => (n === 0 ? s : nest(Buffer.from(`payload: ${s}`).toString('base64'), n - 1));

  test('nested encodings are followed to the depth limit; text still encoded below it is unscannable', () => {
    const four = scanDecoded(Buffer.from(nest(`k ${AWS_ID}`, 4)), masker.scanner, { mode: 'scan' });
    expect(four.findings.map((f) => f.via.length)).toContain(4);
    expect(four.unscannable).toBeUndefined();
    const five = scanDecoded(Buffer.from(nest(`k ${AWS_ID}`, 5)), masker.scanner, { mode: 'scan' });
    expect(five.unscannable).toBe('dlp.decode_too_deep');
    // A lower limit moves the line.
    expect(scanDecoded(Buffer.from(nest('just words here', 3)), masker.scanner, { mode: 'scan', limits: { maxDepth: 2 } }).unscannable).toBe('dlp.decode_too_deep');
  });

  test('more runs than the limit make the body unscannable', () => {
    const body = Buffer.from(Array.from({ length: 100 }, (_, i) => Buffer.from(`chunk number ${i} of data`).toString('base64')).join(' '));
    expect(scanDecoded(body, masker.scanner, { mode: 'scan', limits: { maxRuns: 50 } }).unscannable).toBe('dlp.decode_budget');
    expect(scanDecoded(body, masker.scanner, { mode: 'scan' }).unscannable).toBeUndefined();
  });

  test('decoded bytes past the budget make the body unscannable', () => {
    const body = Buffer.from(nest('some ordinary text that is long enough', 3));
    expect(scanDecoded(body, masker.scanner, { mode: 'scan', limits: { budgetFactor: 0.5 } }).unscannable).toBeUndefined();
    const big = Buffer.from(`${nest('x'.repeat(70_000), 2)}`);
    expect(scanDecoded(big, masker.scanner, { mode: 'scan', limits: { budgetFactor: 0.5 } }).unscannable).toBe('dlp.decode_budget');
  });
});

describe('text for the audit trail', () => {
  test('paths with a secret in any form are recorded masked', () => {
    for (const path of [`/v1/files/${AWS_ID}`, `/v1/x/${pct(AWS_ID)}`, `/p/${Buffer.from(`id=${AWS_ID}`).toString('base64url')}`, `/q/${Buffer.from(AWS_ID).toString('hex')}`]) {
      const out = maskAuditText(path, masker);
      expect(out).not.toBe(path);
      expect(out).not.toContain(AWS_ID);
      expect(scanDecoded(Buffer.from(out), masker.scanner, { mode: 'scan', maskRaw: true }).findings).toEqual([]);
    }
    expect(maskAuditText('/v1/chat/completions', masker)).toBe('/v1/chat/completions');
  });
});

test('isTextLike: text, UTF-8 and UTF-16 yes; random bytes no', () => {
  expect(isTextLike(Buffer.from('plain text\n'))).toBe(true);
  expect(isTextLike(Buffer.from('naïve café — ünïcödé'))).toBe(true);
  expect(isTextLike(Buffer.from('utf sixteen', 'utf16le'))).toBe(true);
  const r = prng(3);
  expect(isTextLike(Buffer.from(Array.from({ length: 64 }, () => Math.floor(r() * 256))))).toBe(false);
});
