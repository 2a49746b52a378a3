// A refused `git push` told in git's own protocol. git shows nothing of an HTTP error body on the
// receive-pack POST ("RPC failed; HTTP 403"), so an agent would never learn why; a report-status
// answer makes git print "! [remote rejected] main -> main (<reason>)" and, over side-band, a
// "remote: sluice: …" line. Pure: builds the body from the request's first pkt-lines and the refs.
// It must only ever produce a rejection (never "ok" for any ref).

export const RECEIVE_PACK_RESULT = 'application/x-git-receive-pack-result';

function pktLine(payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from((data.length + 4).toString(16).padStart(4, '0'), 'ascii'), data]);
}

const FLUSH = Buffer.from('0000', 'ascii');
/** side-band-64k payloads are at most 65519 bytes; ours are a few hundred. */
const BAND_MAX = 65515;

/** Capabilities the client sent after the NUL of its first command pkt-line. */
export function receivePackCapabilities(bodyPrefix: Buffer | undefined): Set<string> {
  if (!bodyPrefix || bodyPrefix.length < 4) return new Set();
  const len = parseInt(bodyPrefix.subarray(0, 4).toString('ascii'), 16);
  if (!Number.isFinite(len) || len < 4 || len > bodyPrefix.length) return new Set();
  const line = bodyPrefix.subarray(4, len);
  const nul = line.indexOf(0);
  if (nul < 0) return new Set();
  return new Set(line.subarray(nul + 1).toString('utf8').trim().split(' ').filter(Boolean));
}

/** One line, printable, short enough for a ref status: git shows it verbatim in parentheses. */
function oneLine(text: string, max = 300): string {
  const clean = text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/**
 * The receive-pack result rejecting every ref with `reason`, or undefined when the client did not
 * ask for a status report (then only an HTTP error is possible).
 */
export function gitPushRejection(bodyPrefix: Buffer | undefined, refs: readonly string[], reason: string, detail: readonly string[] = []): Buffer | undefined {
  const caps = receivePackCapabilities(bodyPrefix);
  if (!refs.length || !(caps.has('report-status') || caps.has('report-status-v2'))) return undefined;
  const status = Buffer.concat([pktLine('unpack ok\n'), ...refs.map((ref) => pktLine(`ng ${ref} ${oneLine(reason)}\n`)), FLUSH]);
  if (!caps.has('side-band-64k') && !caps.has('side-band')) return status;
  const band = (n: number, data: Buffer) => pktLine(Buffer.concat([Buffer.from([n]), data]));
  const maxChunk = caps.has('side-band-64k') ? BAND_MAX : 995;
  const chunks: Buffer[] = [];
  for (const line of detail) chunks.push(band(2, Buffer.from(`sluice: ${oneLine(line, 900)}\n`, 'utf8')));
  for (let i = 0; i < status.length; i += maxChunk) chunks.push(band(1, status.subarray(i, i + maxChunk)));
  chunks.push(FLUSH);
  return Buffer.concat(chunks);
}
