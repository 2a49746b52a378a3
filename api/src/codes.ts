// The catalogue of every stable `area.code` sluice emits: in the agent's error answers, audit
// events (decision code, refusal, cut reason), webhook denials, CLI errors and metric label values,
// plus the decision codes of the Rego policy library. Like undici's and fastify's error tables:
// one row per code with its kind, the HTTP status the agent gets (when it gets one) and what it
// means. Sources type their codes with `Code` (so tsc refuses one that is not a row) and read a
// code's status with codeStatus; api/test/codes.test.ts scans the sources (sidecar, webhook, cli,
// cni, api, lib, policies/rego) and fails on a code literal missing here, and on a row here that
// no source emits; docs/metrics.md and the runbook index render from this table. Pure data: never
// import anything of sluice's here.

/**
 * What a code says happened:
 * - allow, deny, hold: a policy decision (the Rego library's codes); deny also for a sidecar guard
 *   that answers the agent 4xx on its own (kill switch, DLP, smuggling checks)
 * - refusal: a connection closed before any HTTP request (no answer the agent can read)
 * - error: a request answered with an error status (bad input, an unreachable dependency)
 * - fault: sluice itself failed; fail closed
 * - violation: the admission webhook denied a pod, exec or ApprovalRequest
 * - config: a configuration, bundle or rule file was refused when loaded
 * - cut: a response body cut mid-stream (masking could not vouch for the rest)
 * - close: why a WebSocket ended
 * - unscannable: why a git pack could not be scanned (its push is then denied as dlp.unscannable_push)
 * - plan: how masking treats a body (audit note, no refusal by itself)
 */
export type CodeKind = 'allow' | 'deny' | 'hold' | 'refusal' | 'error' | 'fault' | 'violation' | 'config' | 'cut' | 'close' | 'unscannable' | 'plan';

/** Which process emits the code. */
export type CodeSource = 'policy' | 'sidecar' | 'webhook' | 'cli' | 'cni';

export interface CodeEntry {
  readonly code: string;
  readonly kind: CodeKind;
  readonly by: CodeSource;
  /** HTTP status the agent (or the CLI's user) gets, when the code ends a request with an answer. */
  readonly status?: number;
  readonly doc: string;
  /** docs/runbooks page (without .md) that says what to do about it, when there is one. */
  readonly runbook?: string;
}

const policy = <C extends string, K extends 'allow' | 'deny' | 'hold'>(code: C, kind: K, doc: string): CodeEntry & { readonly code: C; readonly kind: K } => ({
  code,
  kind,
  by: 'policy',
  ...(kind === 'deny' ? { status: 403 } : {}),
  doc,
});
const guard = <C extends string>(code: C, doc: string): CodeEntry & { readonly code: C; readonly kind: 'violation' } => ({ code, kind: 'violation', by: 'webhook', doc });

const TABLE = [
  // ── Rego policy library (policies/rego): decision codes ─────────────────────────────────────
  policy('net.not_allowlisted', 'deny', 'no rule of the library allows the destination: the default deny'),
  policy('net.port_denied', 'deny', 'the destination port is not one the organisation allows'),
  policy('net.ip_literal_denied', 'deny', 'a bare IP address as destination, outside the allowed ranges'),
  policy('net.ip_allowed', 'allow', 'the destination address is in an allowed range'),
  policy('net.passthrough', 'allow', 'the host is tunnelled uninspected (pinned certificate or mTLS)'),
  policy('net.connect', 'allow', 'a CONNECT to a known destination; its requests are decided one by one'),
  policy('paths.credential_read_held', 'hold', 'a read of a file that holds credentials (.env, keys, kubeconfig…) needs approval'),
  policy('paths.blob_read_held', 'hold', 'a forge read of a git object by id (blob sha), which names no file the policy can check, needs approval'),
  policy('paths.paste_read_held', 'hold', 'reading a gist’s or snippet’s content, whose files the request does not name, needs approval'),
  policy('paths.code_search_held', 'hold', 'a forge code search that answers with lines of files needs approval'),
  policy('paths.graphql_read_held', 'hold', 'a forge GraphQL query that reads file content, or one in the URL the sidecar could not read, needs approval'),
  policy('paths.ci_variables_held', 'hold', 'reading GitLab CI/CD variables, which it answers with their secret values, needs approval'),
  policy('git.fetch', 'allow', 'clone or fetch over the git protocol'),
  policy('git.push_discovery', 'allow', 'listing refs before a push'),
  policy('git.push_requires_approval', 'hold', 'a push to one of the organisation’s repositories needs approval'),
  policy('git.push_foreign_denied', 'deny', 'a push to a repository that is not the organisation’s'),
  policy('git.push_probe', 'allow', 'an empty receive-pack probe, which changes nothing'),
  policy('git.web_read', 'allow', 'a read from a git host'),
  policy('git.web_write_denied', 'deny', 'a write to a git host outside the git protocol'),
  policy('git.api_read', 'allow', 'a read of the git host API'),
  policy('git.api_write_requires_approval', 'hold', 'a write through the git host API to an organisation repository needs approval'),
  policy('git.api_write_foreign_denied', 'deny', 'a write through the git host API to a foreign repository'),
  policy('git.paste_denied', 'deny', 'creating or changing a paste (gist, snippet)'),
  policy('git.archive_read', 'allow', 'a zip or tarball of a whole repository: a read like a clone'),
  policy('git.graphql_read', 'allow', 'a forge GraphQL query that reads no file content'),
  policy('registry.read', 'allow', 'a read from a package or image registry'),
  policy('registry.module_read', 'allow', 'a Go module proxy read for a listed module host'),
  policy('registry.module_host_denied', 'deny', 'a Go module proxy read for a module host the organisation does not list'),
  policy('registry.push_held', 'hold', 'publishing to the organisation’s own registry namespace needs approval'),
  policy('registry.write_denied', 'deny', 'any other write to a registry'),
  policy('k8s.read', 'allow', 'a Kubernetes API read in an allowed namespace'),
  policy('k8s.discovery', 'allow', 'Kubernetes API discovery'),
  policy('k8s.secret_read_held', 'hold', 'reading a Secret needs approval'),
  policy('k8s.write_held', 'hold', 'a Kubernetes API write needs approval'),
  policy('k8s.channel_denied', 'deny', 'exec, attach, port-forward, proxy or an upgrade to the API server: a channel around the gateway'),
  policy('k8s.foreign_namespace_denied', 'deny', 'a namespace the organisation does not list'),
  policy('k8s.all_namespaces_denied', 'deny', 'a read across all namespaces when `*` is not listed'),
  policy('k8s.impersonation_denied', 'deny', 'a request that impersonates another user, group or service account'),
  policy('k8s.unclassified', 'deny', 'a Kubernetes API request the library cannot classify'),
  policy('llm.allowed', 'allow', 'inference on an allowed model, with outbound masking'),
  policy('llm.models', 'allow', 'listing a provider’s models'),
  policy('llm.agent_key_refused', 'deny', 'the agent sent its own model API key where sluice injects the organisation’s'),
  policy('llm.method_denied', 'deny', 'a method other than inference and reads on a model API'),
  policy('llm.operation_denied', 'deny', 'a model API operation the organisation does not allow (files, fine-tuning, batches…)'),
  policy('llm.model_denied', 'deny', 'a model the organisation does not allow on that provider'),
  policy('cloud.endpoint', 'allow', 'an AWS endpoint the organisation lists'),
  policy('cloud.aws', 'allow', 'an AWS action the organisation allows'),
  policy('cloud.anonymous_read', 'allow', 'an anonymous read of a bucket the organisation allows'),
  policy('cloud.service_not_listed', 'deny', 'an AWS service the organisation does not list'),
  policy('cloud.region_denied', 'deny', 'an AWS region the organisation does not use'),
  policy('cloud.unsigned_denied', 'deny', 'an unsigned request to an AWS API that needs a signature'),
  policy('cloud.unclassified', 'deny', 'an AWS request the library cannot classify (no service or action)'),
  policy('cloud.s3_foreign_write_denied', 'deny', 'a write to a bucket that is not the organisation’s'),
  policy('cloud.s3_foreign_read_denied', 'deny', 'a read of a bucket the organisation does not allow'),
  policy('cloud.s3_copy_source_denied', 'deny', 'CopyObject/UploadPartCopy whose copy source is not readable'),
  policy('cloud.assume_role_foreign_denied', 'deny', 'AssumeRole into a role outside the organisation’s accounts'),
  policy('cloud.assume_role_held', 'hold', 'AssumeRole into an organisation role needs approval'),
  policy('cloud.foreign_resource_denied', 'deny', 'an action on a resource in an account that is not the organisation’s'),
  policy('cloud.resource_unknown_held', 'hold', 'an action whose resource cannot be named needs approval'),
  policy('cloud.secret_read_held', 'hold', 'reading a secret (Secrets Manager, SSM parameter…) needs approval'),
  policy('cloud.iam_write_denied', 'deny', 'a change to identities or their permissions'),
  policy('cloud.iam_write_held', 'hold', 'a change to identities or their permissions that the organisation holds for approval'),
  policy('cloud.destructive_held', 'hold', 'a destructive action needs approval'),
  policy('cloud.share_held', 'hold', 'making data reachable from outside the organisation’s accounts (a subscription, API destination, permission, grant or ACL) needs approval'),

  // ── sidecar: connections refused before any request ─────────────────────────────────────────
  { code: 'net.not_http', kind: 'refusal', by: 'sidecar', doc: 'the first bytes are neither TLS nor HTTP (opaque protocols are not tunnelled)' },
  { code: 'net.no_server_name', kind: 'refusal', by: 'sidecar', doc: 'a TLS connection without a server name to a destination sluice cannot name' },
  { code: 'net.first_bytes_timeout', kind: 'refusal', by: 'sidecar', doc: 'the connection sent nothing in time' },
  { code: 'net.sni_mismatch', kind: 'refusal', by: 'sidecar', doc: 'the TLS server name differs from the CONNECT target' },
  { code: 'net.bad_server_name', kind: 'refusal', by: 'sidecar', doc: 'the TLS server name (or the CONNECT or DNS name it stands for) is not a hostname or IP address' },
  { code: 'net.outside_pod', kind: 'refusal', by: 'sidecar', doc: 'a connection from an address outside the pod' },
  { code: 'tls.handshake_failed', kind: 'refusal', by: 'sidecar', doc: 'the TLS handshake with the agent failed' },
  { code: 'tls.handshake_timeout', kind: 'refusal', by: 'sidecar', doc: 'the TLS handshake with the agent did not complete in time' },
  { code: 'tls.mint_failed', kind: 'refusal', by: 'sidecar', doc: 'sluice could not mint a leaf certificate for the server name' },
  { code: 'facts.derive_failed', kind: 'refusal', by: 'sidecar', status: 403, doc: 'the request facts (git, cloud, Kubernetes, model API) could not be derived; denied (fail closed)' },

  // ── sidecar: request smuggling and target checks ────────────────────────────────────────────
  { code: 'net.host_mismatch', kind: 'deny', by: 'sidecar', status: 400, doc: 'Host differs from HTTP/2 :authority (400), or an absolute-form URL host differs from Host (answered 403)' },
  { code: 'net.sni_host_mismatch', kind: 'deny', by: 'sidecar', status: 403, doc: 'the TLS server name differs from Host (domain fronting)' },
  { code: 'net.connect_host_mismatch', kind: 'deny', by: 'sidecar', status: 403, doc: 'the CONNECT target differs from Host' },
  { code: 'net.dns_host_mismatch', kind: 'deny', by: 'sidecar', status: 403, doc: 'the connection was for one name (by its DNS answer) but Host names another' },
  { code: 'pod.killed', kind: 'deny', by: 'sidecar', status: 403, doc: 'the pod has been cut off by its kill switch (sluice.io/kill)' },
  { code: 'http.ambiguous_length', kind: 'error', by: 'sidecar', status: 400, doc: 'both Content-Length and Transfer-Encoding, or several lengths' },
  { code: 'http.bad_chunk', kind: 'error', by: 'sidecar', status: 400, doc: 'a malformed chunked body' },
  { code: 'http.bad_connect_target', kind: 'error', by: 'sidecar', status: 400, doc: 'CONNECT without host:port' },
  { code: 'http.bad_content_length', kind: 'error', by: 'sidecar', status: 400, doc: 'an invalid Content-Length' },
  { code: 'http.bad_expect', kind: 'error', by: 'sidecar', status: 417, doc: 'an Expect other than 100-continue' },
  { code: 'http.bad_header', kind: 'error', by: 'sidecar', status: 400, doc: 'a malformed header field' },
  { code: 'http.bad_host', kind: 'deny', by: 'sidecar', status: 400, doc: 'more than one Host field, or a Host that is not a host' },
  { code: 'http.bad_target', kind: 'deny', by: 'sidecar', status: 400, doc: 'an absolute-form request target where it is not accepted' },
  { code: 'http.bad_transfer_encoding', kind: 'error', by: 'sidecar', status: 400, doc: 'an invalid Transfer-Encoding' },
  { code: 'http.body_error', kind: 'deny', by: 'sidecar', status: 400, doc: 'the request body could not be read for the policy' },
  { code: 'http.client_closed', kind: 'error', by: 'sidecar', doc: 'the agent closed the request before it was answered' },
  { code: 'http.credentials_in_url', kind: 'deny', by: 'sidecar', status: 400, doc: 'user:password in a proxy request URL' },
  { code: 'http.h2_protocol_error', kind: 'error', by: 'sidecar', doc: 'an HTTP/2 session error' },
  { code: 'http.header_too_large', kind: 'error', by: 'sidecar', status: 431, doc: 'the request header block exceeds the limit' },
  { code: 'http.headers_timeout', kind: 'error', by: 'sidecar', status: 408, doc: 'the request headers were not received in time' },
  { code: 'http.malformed', kind: 'error', by: 'sidecar', status: 400, doc: 'a request the HTTP parser rejects' },
  { code: 'http.nested_connect', kind: 'deny', by: 'sidecar', status: 400, doc: 'CONNECT inside a tunnel' },
  { code: 'http.pipelined_takeover', kind: 'refusal', by: 'sidecar', doc: 'a CONNECT or protocol upgrade pipelined behind a request still being answered: the connection is closed (no answer could be framed), the request in flight ends cut' },
  { code: 'http.no_host', kind: 'deny', by: 'sidecar', status: 400, doc: 'a request without a Host header' },
  { code: 'http.request_timeout', kind: 'error', by: 'sidecar', status: 408, doc: 'the request body stalled' },
  { code: 'http.target_above_root', kind: 'deny', by: 'sidecar', status: 400, doc: 'the request path climbs above the root with ..' },
  { code: 'http.target_ambiguous', kind: 'deny', by: 'sidecar', status: 400, doc: 'a path segment servers read differently (encoded dot-segments, slashes, backslashes)' },
  { code: 'http.target_bad_char', kind: 'deny', by: 'sidecar', status: 400, doc: 'the request target contains a control or space byte' },
  { code: 'http.target_bad_escape', kind: 'deny', by: 'sidecar', status: 400, doc: 'a % that does not start a valid escape' },
  { code: 'http.target_form', kind: 'deny', by: 'sidecar', status: 400, doc: 'asterisk-form (OPTIONS *) requests are not forwarded' },
  { code: 'http.target_fragment', kind: 'deny', by: 'sidecar', status: 400, doc: 'a fragment (#) in the request target' },
  { code: 'http.target_override', kind: 'deny', by: 'sidecar', status: 400, doc: 'a header that replaces the request target on some servers (X-Original-URL…)' },
  { code: 'http.upgrade_credential', kind: 'deny', by: 'sidecar', status: 403, doc: 'an upgrade where the decision injects a credential (an upgraded connection cannot carry it)' },
  { code: 'http.upgrade_denied', kind: 'deny', by: 'sidecar', status: 403, doc: 'the policy allows the request but not the upgrade' },
  { code: 'http.upgrade_body', kind: 'deny', by: 'sidecar', status: 400, doc: 'a protocol upgrade request with a body (Content-Length above 0 or Transfer-Encoding); the opening handshake carries none' },
  { code: 'http.upgrade_h2c', kind: 'deny', by: 'sidecar', status: 400, doc: 'an upgrade to cleartext HTTP/2 (h2c); HTTP/2 is offered through TLS ALPN only' },
  { code: 'http.upgrade_protocol', kind: 'deny', by: 'sidecar', status: 403, doc: 'an upgrade to a protocol other than WebSocket' },

  // ── sidecar: outbound DLP (masking of what the agent sends) ─────────────────────────────────
  { code: 'dlp.secret_in_request', kind: 'deny', by: 'sidecar', status: 403, doc: 'the request body holds a secret (policy dlp: block)' },
  { code: 'dlp.encoded_secret_in_request', kind: 'deny', by: 'sidecar', status: 403, doc: 'the request body holds an encoded secret (base64, percent, JSON escapes…)' },
  { code: 'dlp.secret_in_header', kind: 'deny', by: 'sidecar', status: 403, doc: 'a request header holds a secret (policy dlp: block)' },
  { code: 'dlp.secret_in_url', kind: 'deny', by: 'sidecar', status: 403, doc: 'the request path or query holds a secret (policy dlp: block)' },
  { code: 'dlp.secret_in_push', kind: 'deny', by: 'sidecar', status: 403, doc: 'a git push carries a secret' },
  { code: 'dlp.secret_in_websocket', kind: 'close', by: 'sidecar', doc: 'a WebSocket message holds a secret; the connection is closed' },
  { code: 'dlp.secret_across_messages', kind: 'close', by: 'sidecar', doc: 'a secret split across two WebSocket messages; the connection is closed' },
  { code: 'dlp.unmaskable_secret', kind: 'deny', by: 'sidecar', status: 403, doc: 'a secret in a form that cannot be masked in place; blocked (also cuts a response)' },
  { code: 'dlp.unscannable_body', kind: 'deny', by: 'sidecar', status: 403, doc: 'a request body that cannot be scanned (compressed, packed, unknown encoding)' },
  { code: 'dlp.unscannable_push', kind: 'deny', by: 'sidecar', status: 403, doc: 'a git push whose pack cannot be scanned (see the pack.* reasons)' },
  { code: 'dlp.body_too_large', kind: 'deny', by: 'sidecar', status: 403, doc: 'a request body over the scan window' },
  { code: 'dlp.undecodable_body', kind: 'deny', by: 'sidecar', status: 403, doc: 'an unbroken run longer than the decode window: it cannot be decoded and scanned' },
  { code: 'dlp.decode_budget', kind: 'deny', by: 'sidecar', status: 403, doc: 'decoding nested encodings exceeded the work budget' },
  { code: 'dlp.decode_too_deep', kind: 'deny', by: 'sidecar', status: 403, doc: 'encodings nested deeper than sluice decodes' },

  // ── sidecar: response masking ───────────────────────────────────────────────────────────────
  { code: 'masking.scan', kind: 'plan', by: 'sidecar', doc: 'the body is scanned and masked' },
  { code: 'masking.git_push', kind: 'plan', by: 'sidecar', doc: 'a receive-pack body: its pack is scanned' },
  { code: 'masking.git_data', kind: 'plan', by: 'sidecar', doc: 'git protocol data passed unmasked (upload-pack)' },
  { code: 'masking.empty_body', kind: 'plan', by: 'sidecar', doc: 'an empty body, nothing to scan' },
  { code: 'masking.binary_type', kind: 'plan', by: 'sidecar', doc: 'a binary media type passed unmasked' },
  { code: 'masking.partial_content', kind: 'plan', by: 'sidecar', doc: 'a 206 partial response cannot be masked as a whole: refused' },
  { code: 'masking.grpc_unsupported', kind: 'plan', by: 'sidecar', doc: 'gRPC bodies cannot be masked: refused' },
  { code: 'masking.unknown_encoding', kind: 'plan', by: 'sidecar', doc: 'a Content-Encoding sluice cannot decode: refused' },
  { code: 'masking.bad_encoding', kind: 'cut', by: 'sidecar', doc: 'the body is not what its Content-Encoding says' },
  { code: 'masking.decompression_bomb', kind: 'cut', by: 'sidecar', doc: 'the body inflates past the allowed ratio' },
  { code: 'masking.stream_error', kind: 'cut', by: 'sidecar', doc: 'the masking stream failed mid-body' },
  { code: 'masking.bad_rule', kind: 'config', by: 'sidecar', doc: 'a masking rule does not match the rule schema' },
  { code: 'masking.bad_rule_file', kind: 'config', by: 'sidecar', doc: 'a masking rule file is not valid YAML/JSON' },
  { code: 'masking.bad_regex', kind: 'config', by: 'sidecar', doc: 'a rule pattern is not a valid regex' },
  { code: 'masking.slow_regex', kind: 'config', by: 'sidecar', doc: 'a rule pattern can backtrack super-linearly' },
  { code: 'masking.bad_keyword', kind: 'config', by: 'sidecar', doc: 'rule keywords must be printable ASCII' },
  { code: 'masking.duplicate_rule', kind: 'config', by: 'sidecar', doc: 'a rule id is defined twice' },
  { code: 'masking.too_many_assignment_rules', kind: 'config', by: 'sidecar', doc: 'more assignment rules than the scanner accepts' },

  // ── sidecar: git pack scanning (reasons of dlp.unscannable_push) ────────────────────────────
  { code: 'pack.missing', kind: 'unscannable', by: 'sidecar', doc: 'ref updates without a pack' },
  { code: 'pack.bad_pkt_line', kind: 'unscannable', by: 'sidecar', doc: 'a bad pkt-line length' },
  { code: 'pack.truncated_commands', kind: 'unscannable', by: 'sidecar', doc: 'the pkt-line section ends before its flush' },
  { code: 'pack.bad_command', kind: 'unscannable', by: 'sidecar', doc: 'a receive-pack command line that is not old new ref' },
  { code: 'pack.bad_header', kind: 'unscannable', by: 'sidecar', doc: 'the body does not hold a packfile' },
  { code: 'pack.bad_version', kind: 'unscannable', by: 'sidecar', doc: 'a pack version other than 2 or 3' },
  { code: 'pack.too_many_objects', kind: 'unscannable', by: 'sidecar', doc: 'more objects than the limit' },
  { code: 'pack.bad_checksum', kind: 'unscannable', by: 'sidecar', doc: 'the pack trailer checksum does not match' },
  { code: 'pack.truncated', kind: 'unscannable', by: 'sidecar', doc: 'the pack ends before its last object' },
  { code: 'pack.bad_object_header', kind: 'unscannable', by: 'sidecar', doc: 'an object size varint that is too long' },
  { code: 'pack.bad_object_type', kind: 'unscannable', by: 'sidecar', doc: 'an unknown object type' },
  { code: 'pack.object_too_large', kind: 'unscannable', by: 'sidecar', doc: 'an object over the size limit' },
  { code: 'pack.bad_delta_base', kind: 'unscannable', by: 'sidecar', doc: 'an OFS_DELTA pointing outside the pack' },
  { code: 'pack.bad_zlib', kind: 'unscannable', by: 'sidecar', doc: 'an object that does not inflate' },
  { code: 'pack.bad_object_size', kind: 'unscannable', by: 'sidecar', doc: 'an object that inflates to another size than its header says' },
  { code: 'pack.trailing_data', kind: 'unscannable', by: 'sidecar', doc: 'bytes after the last object' },
  { code: 'pack.inflated_too_large', kind: 'unscannable', by: 'sidecar', doc: 'more bytes inflated than the limit' },
  { code: 'pack.bad_delta', kind: 'unscannable', by: 'sidecar', doc: 'a delta that does not apply to its base' },
  { code: 'pack.too_large', kind: 'unscannable', by: 'sidecar', doc: 'a pack over the size limit' },
  { code: 'pack.delta_too_deep', kind: 'unscannable', by: 'sidecar', doc: 'a delta chain deeper than the limit' },
  { code: 'pack.thin_delta', kind: 'unscannable', by: 'sidecar', doc: 'a delta against a base not in the pack (thin pack)' },
  { code: 'pack.internal_error', kind: 'unscannable', by: 'sidecar', doc: 'the pack scanner failed; the push is denied (fail closed)' },

  // ── sidecar: WebSocket ──────────────────────────────────────────────────────────────────────
  { code: 'ws.bad_handshake', kind: 'error', by: 'sidecar', status: 400, doc: 'an opening handshake that is not RFC 6455 (GET, version 13, a 16-byte key)' },
  { code: 'ws.upstream_handshake', kind: 'error', by: 'sidecar', status: 502, doc: 'the upstream did not switch protocols' },
  { code: 'ws.malformed_frame', kind: 'close', by: 'sidecar', doc: 'a frame that breaks RFC 6455' },
  { code: 'ws.invalid_utf8', kind: 'close', by: 'sidecar', doc: 'a text message that is not valid UTF-8' },
  { code: 'ws.rate_limited', kind: 'close', by: 'sidecar', doc: 'one connection went over websocket.rate.connection (messages or bytes a second); closed with 1008' },
  { code: 'ws.sidecar_rate_limited', kind: 'close', by: 'sidecar', doc: "the sidecar's WebSockets together went over websocket.rate.sidecar; the connection that did is closed with 1008" },
  { code: 'ws.idle_timeout', kind: 'close', by: 'sidecar', doc: 'no text or binary message either way for websocket.idleTimeoutMs (pings do not count); closed with 1001' },
  { code: 'ws.max_lifetime', kind: 'close', by: 'sidecar', doc: 'the connection reached websocket.maxLifetimeMs; closed with 1001 (the client reconnects and is decided again)' },
  { code: 'ws.message_too_large', kind: 'close', by: 'sidecar', doc: 'a message over the size limit' },
  { code: 'ws.closed', kind: 'close', by: 'sidecar', doc: 'closed by both sides' },
  { code: 'ws.peer_gone', kind: 'close', by: 'sidecar', doc: 'one side closed or lost the connection' },

  // ── sidecar: upstream ───────────────────────────────────────────────────────────────────────
  { code: 'upstream.dns_failed', kind: 'error', by: 'sidecar', status: 502, doc: 'the upstream name does not resolve' },
  { code: 'upstream.connect_failed', kind: 'error', by: 'sidecar', status: 502, doc: 'the upstream refused or dropped the connection' },
  { code: 'upstream.connect_error', kind: 'error', by: 'sidecar', status: 502, doc: 'the upstream WebSocket connection failed' },
  { code: 'upstream.tls_verify_failed', kind: 'error', by: 'sidecar', status: 502, doc: 'the upstream certificate failed verification' },
  { code: 'upstream.timeout', kind: 'error', by: 'sidecar', status: 504, doc: 'the upstream did not answer in time' },
  { code: 'upstream.bad_headers', kind: 'error', by: 'sidecar', status: 502, doc: 'the upstream sent headers that cannot be relayed to the agent' },
  { code: 'upstream.error', kind: 'error', by: 'sidecar', status: 502, doc: 'any other upstream failure' },

  // ── sidecar: policy engine and bundles ──────────────────────────────────────────────────────
  { code: 'policy.not_loaded', kind: 'fault', by: 'sidecar', status: 403, doc: 'no policy bundle is loaded: every request is denied', runbook: 'SluicePolicyNotLoaded' },
  { code: 'policy.no_organisation', kind: 'fault', by: 'sidecar', status: 403, doc: 'no SluicePolicy applies yet: every request is denied until it is read from the cluster' },
  { code: 'policy.eval_error', kind: 'fault', by: 'sidecar', status: 403, doc: 'policy evaluation failed; denied (fail closed)' },
  { code: 'policy.malformed_decision', kind: 'fault', by: 'sidecar', status: 403, doc: 'the policy returned a decision that does not match the contract; denied' },
  { code: 'bundle.missing', kind: 'config', by: 'sidecar', doc: 'no policy bundle at the configured path', runbook: 'SluicePolicyNotLoaded' },
  { code: 'bundle.unreadable', kind: 'config', by: 'sidecar', doc: 'the bundle file cannot be read', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.bad_archive', kind: 'config', by: 'sidecar', doc: 'the bundle is not a well-formed tar.gz (or names a path outside itself)', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.too_large', kind: 'config', by: 'sidecar', doc: 'the bundle holds too many or too large files', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.bad_manifest', kind: 'config', by: 'sidecar', doc: 'the .manifest is not valid JSON', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.bad_data', kind: 'config', by: 'sidecar', doc: 'a data file of the bundle is not valid JSON/YAML', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.no_wasm', kind: 'config', by: 'sidecar', doc: 'no policy.wasm in the bundle', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.bad_wasm', kind: 'config', by: 'sidecar', doc: 'policy.wasm does not load', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.no_entrypoint', kind: 'config', by: 'sidecar', doc: 'the bundle was not built with the sluice/decision entrypoint', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.unsupported_builtin', kind: 'config', by: 'sidecar', doc: 'the policy uses a builtin the WASM runtime does not provide', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.unsigned', kind: 'config', by: 'sidecar', doc: 'a signing key is configured but the bundle carries no signature', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.signature_invalid', kind: 'config', by: 'sidecar', doc: 'the bundle signature is malformed or does not verify', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.file_not_signed', kind: 'config', by: 'sidecar', doc: 'a file in the bundle is not in its signature', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.signed_file_missing', kind: 'config', by: 'sidecar', doc: 'a signed file is missing from the bundle', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.digest_mismatch', kind: 'config', by: 'sidecar', doc: 'a file changed after signing', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.verification_key', kind: 'config', by: 'sidecar', doc: 'the bundle verification key cannot be read', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.object_missing', kind: 'config', by: 'sidecar', doc: 'the policy bundle ConfigMap in the release namespace does not exist (deleted, or not created yet)', runbook: 'SluicePolicyNotLoaded' },
  { code: 'bundle.object_no_archive', kind: 'config', by: 'sidecar', doc: 'the policy bundle ConfigMap has no binaryData bundle.tar.gz', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.oci_manifest', kind: 'config', by: 'sidecar', doc: 'the OCI reference names no OPA bundle: an index, another media type, or not exactly one tar+gzip layer', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.oci_digest_mismatch', kind: 'config', by: 'sidecar', doc: 'a manifest or bundle layer pulled from the registry does not match its digest (the pinned one, the registry\'s or the descriptor\'s)', runbook: 'SluicePolicyLoadFailing' },
  { code: 'bundle.source_unreachable', kind: 'config', by: 'sidecar', doc: 'the policy bundle could not be read from the API server or the registry (RBAC, network) and none is in service', runbook: 'SluicePolicyNotLoaded' },
  { code: 'sluicepolicy.invalid', kind: 'config', by: 'sidecar', doc: 'a SluicePolicy object that does not match its schema' },
  { code: 'sluicepolicy.missing_default', kind: 'config', by: 'sidecar', doc: 'the default SluicePolicy must carry spec.organisation' },
  { code: 'sluicepolicy.default_has_applies_to', kind: 'config', by: 'sidecar', doc: 'the default SluicePolicy applies everywhere: it has no appliesTo' },
  { code: 'sluicepolicy.binding_without_applies_to', kind: 'config', by: 'sidecar', doc: 'a binding SluicePolicy must name its namespaces (spec.appliesTo)' },
  { code: 'sluicepolicy.organisation_outside_default', kind: 'config', by: 'sidecar', doc: 'only the object named default carries spec.organisation' },

  // ── sidecar: approvals (a held request that ends without being forwarded) ───────────────────
  { code: 'approval.denied', kind: 'deny', by: 'sidecar', status: 403, doc: 'a person denied the held request' },
  { code: 'approval.expired', kind: 'deny', by: 'sidecar', status: 403, doc: 'nobody decided before the hold expired' },
  { code: 'approval.unavailable', kind: 'error', by: 'sidecar', status: 503, doc: 'the ApprovalRequest could not be created or watched; denied (fail closed)', runbook: 'SluiceApprovalsApiErrors' },
  { code: 'approval.forbidden', kind: 'error', by: 'sidecar', status: 503, doc: 'the sidecar may not create ApprovalRequests (RBAC)', runbook: 'SluiceApprovalsApiErrors' },
  { code: 'approval.too_many_holds', kind: 'error', by: 'sidecar', status: 503, doc: 'the pod already has the most holds allowed at once' },
  { code: 'approval.deleted', kind: 'deny', by: 'sidecar', status: 403, doc: 'the ApprovalRequest was deleted while the request waited' },
  { code: 'approval.sidecar_stopping', kind: 'error', by: 'sidecar', status: 503, doc: 'the sidecar is shutting down; holds end' },

  // ── sidecar: credentials ────────────────────────────────────────────────────────────────────
  { code: 'credentials.provider_unavailable', kind: 'error', by: 'sidecar', status: 503, doc: 'the provider could not be reached, timed out or answered 5xx', runbook: 'SluiceCredentialIssuanceFailing' },
  { code: 'credentials.provider_rejected', kind: 'error', by: 'sidecar', status: 502, doc: 'the provider refused (bad token, access denied) or answered nonsense', runbook: 'SluiceCredentialIssuanceFailing' },
  { code: 'credentials.subject_token_unavailable', kind: 'error', by: 'sidecar', status: 503, doc: 'the projected service-account token is missing, unreadable or expired', runbook: 'SluiceCredentialIssuanceFailing' },
  { code: 'credentials.not_configured', kind: 'error', by: 'sidecar', status: 502, doc: 'the decision names a provider, profile, role or secret the config does not define', runbook: 'SluiceCredentialIssuanceFailing' },
  { code: 'credentials.unknown_provider', kind: 'error', by: 'sidecar', status: 502, doc: 'the decision names a provider sluice does not know', runbook: 'SluiceCredentialIssuanceFailing' },
  { code: 'credentials.host_not_allowed', kind: 'error', by: 'sidecar', status: 502, doc: 'the config forbids this credential for the destination host', runbook: 'SluiceCredentialIssuanceFailing' },
  { code: 'credentials.plaintext_refused', kind: 'error', by: 'sidecar', status: 403, doc: 'credentials only leave over TLS', runbook: 'SluiceCredentialIssuanceFailing' },
  { code: 'credentials.secret_unavailable', kind: 'error', by: 'sidecar', status: 503, doc: 'the mounted static secret cannot be read' },
  { code: 'credentials.aws_signature_unsupported', kind: 'error', by: 'sidecar', status: 501, doc: 'an AWS request shape sluice cannot re-sign (SigV2, SigV4A, ECDSA streaming)' },
  { code: 'credentials.aws_signature_malformed', kind: 'error', by: 'sidecar', status: 400, doc: 'the agent’s SigV4 authorization cannot be parsed' },
  { code: 'credentials.aws_presign_expired', kind: 'error', by: 'sidecar', status: 403, doc: 'the agent’s presigned URL has expired' },
  { code: 'credentials.aws_body_too_large', kind: 'error', by: 'sidecar', status: 413, doc: 'a body that must be hashed for signing is over the bound' },
  { code: 'credentials.aws_body_invalid', kind: 'error', by: 'sidecar', status: 400, doc: 'the body does not match its declared payload hash, or aws-chunked is malformed' },
  { code: 'credentials.aws_bucket_owner_conflict', kind: 'error', by: 'sidecar', status: 403, doc: 'the agent’s x-amz-(source-)expected-bucket-owner names another account than the owner sluice makes S3 check' },
  { code: 'credentials.internal_error', kind: 'fault', by: 'sidecar', status: 502, doc: 'a fault in sluice while injecting a credential' },

  // ── sidecar: audit ──────────────────────────────────────────────────────────────────────────
  { code: 'audit.spool_full', kind: 'error', by: 'sidecar', status: 503, doc: 'the audit spool is full (onFull: fail-closed); requests are refused', runbook: 'SluiceAuditWriteFailing' },
  { code: 'audit.spool_io', kind: 'error', by: 'sidecar', status: 503, doc: 'the disk refused an audit spool write', runbook: 'SluiceAuditWriteFailing' },
  { code: 'audit.not_running', kind: 'fault', by: 'sidecar', status: 503, doc: 'the recorder is not running (starting or stopping)', runbook: 'SluiceAuditWriteFailing' },
  { code: 'audit.bad_record', kind: 'fault', by: 'sidecar', status: 503, doc: 'an event that cannot be serialised or does not match the schema', runbook: 'SluiceAuditWriteFailing' },
  { code: 'audit.spool_corrupt', kind: 'fault', by: 'sidecar', doc: 'the spool holds data this version cannot read', runbook: 'SluiceAuditWriteFailing' },
  { code: 'audit.error', kind: 'fault', by: 'sidecar', status: 503, doc: 'the audit trail failed without a code of its own' },

  // ── sidecar: process ────────────────────────────────────────────────────────────────────────
  { code: 'sidecar.internal_error', kind: 'fault', by: 'sidecar', status: 502, doc: 'a fault in the sidecar; the request fails closed' },
  { code: 'interception.install_failed', kind: 'fault', by: 'sidecar', doc: 'the interception rules could not be installed; the sidecar does not start' },
  { code: 'interception.not_in_place', kind: 'fault', by: 'sidecar', doc: 'the interception rules are not in place; the sidecar does not start' },
  { code: 'dns.bad_cidr', kind: 'config', by: 'sidecar', doc: 'the fake-IP range is not a valid CIDR' },

  // ── CLI: session sources (kubectl sluice audit) ─────────────────────────────────────────────
  { code: 'source.bad_selector', kind: 'error', by: 'cli', doc: 'a namespace or pod selector that is not a Kubernetes name' },
  { code: 'source.bad_session', kind: 'error', by: 'cli', doc: 'not a sluice session id' },
  { code: 'source.bad_tenant', kind: 'error', by: 'cli', doc: 'a VictoriaLogs tenant that is not AccountID or AccountID:ProjectID' },
  { code: 'source.unreachable', kind: 'error', by: 'cli', doc: 'the log store cannot be reached' },
  { code: 'source.query_failed', kind: 'error', by: 'cli', doc: 'the log store answered an error or something that is not its format' },
  { code: 'source.unreadable', kind: 'error', by: 'cli', doc: 'the spool directory cannot be read' },

  // ── CNI plugin ──────────────────────────────────────────────────────────────────────────────
  { code: 'cni.install_failed', kind: 'fault', by: 'cni', doc: 'the interception rules could not be installed in the pod’s network namespace; the pod does not start' },

  // ── webhook: pod guard (docs/webhook.md) ────────────────────────────────────────────────────
  guard('guard.sidecar_missing', 'an agent pod without the sluice sidecar'),
  guard('guard.sidecar_modified', 'the sluice sidecar differs from what the webhook injected'),
  guard('guard.sidecar_resize', 'a resize of the sluice sidecar'),
  guard('guard.reserved_name', 'a container with a name reserved for sluice'),
  guard('guard.reserved_port', 'a container port reserved for the sidecar'),
  guard('guard.injection_marker', 'the injection label set or removed by hand'),
  guard('guard.kill_switch', 'the kill switch annotation changed by someone who may not'),
  guard('guard.host_namespace', 'hostNetwork, hostPID or hostIPC'),
  guard('guard.share_process_namespace', 'shareProcessNamespace'),
  guard('guard.host_path', 'a hostPath volume'),
  guard('guard.privileged', 'a privileged container'),
  guard('guard.capability', 'an added capability (NET_ADMIN, NET_RAW, SYS_ADMIN…)'),
  guard('guard.privilege_escalation', 'allowPrivilegeEscalation'),
  guard('guard.uid_change', 'a capability that changes user (SETUID, SETGID)'),
  guard('guard.uid_unset', 'a container without runAsUser'),
  guard('guard.root_user', 'a container that runs as root'),
  guard('guard.proxy_uid', 'a container that runs as the sidecar’s UID'),
  guard('guard.proxy_gid', 'a group that is the sidecar’s GID'),
  guard('guard.service_account_token', 'an agent container that mounts a service-account token'),
  guard('guard.legacy_token_secret', 'a legacy service-account token Secret'),
  guard('guard.static_credential', 'a Secret holding a credential sluice injects'),
  guard('guard.sluice_volume', 'an agent container that mounts a sluice volume'),
  guard('guard.sluice_settings', 'an agent that reads the sidecar settings ConfigMap'),
  guard('guard.sluice_settings_write', 'a write to the sidecar settings or policy bundle ConfigMap by someone who may not'),
  guard('guard.sluice_policy_write', 'a write to a SluicePolicy by a ServiceAccount outside the writer namespaces (any RBAC)'),
  guard('guard.ephemeral_target', 'an ephemeral container targeting the sidecar'),
  guard('guard.exec_sidecar', 'exec or attach into the sidecar'),
  guard('guard.port_forward', 'port-forward or pods/proxy to the sidecar’s ports'),
  guard('guard.creator_missing', 'an injected pod without the creator stamp'),
  guard('guard.creator_forged', 'a creator stamp that does not match the authenticated creator'),
  guard('guard.creator_changed', 'the creator stamp changed on update'),
  guard('creator.forged', 'a pod template that carries a creator stamp (written only by sluice)'),
  guard('creator.unresolved', 'the creator of a workload cannot be resolved; refused so the controller retries'),

  // ── webhook: ApprovalRequest rules (docs/approvals.md) ──────────────────────────────────────
  guard('approval.not_the_sidecar', 'only the sidecar of the pod, with a token bound to it, creates its ApprovalRequests'),
  guard('approval.pod_unknown', 'the pod the request names cannot be read; refused (fail closed)'),
  guard('approval.pod_mismatch', 'the request names another pod, namespace or service account than its creator'),
  guard('approval.creator_forged', 'spec.creator differs from the pod’s creator stamp'),
  guard('approval.creator_unknown', 'the creator of the request is unknown'),
  guard('approval.owner_missing', 'the request is not owned by its pod'),
  guard('approval.not_pod_bound', 'the sidecar’s token is not bound to a pod'),
  guard('approval.summary_mismatch', 'the summary does not match the held request'),
  guard('approval.bad_decision', 'an invalid state, scope, TTL or expiry'),
  guard('approval.spec_immutable', 'the spec changed after creation'),
  guard('approval.self_approval', 'the agent’s creator decided their own request'),
  guard('approval.not_an_approver', 'the decider is not an approver'),
  guard('approval.decider_mismatch', 'status.decidedBy is not the authenticated user'),
  guard('approval.already_decided', 'a decided request changed again (revocation may only add revokedBy and revokedAt)'),
] as const satisfies readonly CodeEntry[];

/** The catalogue: one row per code. */
export const CODES: readonly CodeEntry[] = TABLE;

/** Every code sluice emits, as a type; `Code<'refusal'>` is the codes of one kind. Sources type
 *  their code fields, error classes and answers with it, so a code that is not a row here fails
 *  the typecheck (`Type '"net.opaque_tunnel"' is not assignable to type 'Code'`). */
export type Code<K extends CodeKind = CodeKind> = Extract<(typeof TABLE)[number], { readonly kind: K }>['code'];

/** The codes of one area (the part before the dot), optionally of one kind: `AreaCode<'audit'>`,
 *  `AreaCode<'masking', 'config'>`. */
export type AreaCode<A extends string, K extends CodeKind = CodeKind> = Extract<Code<K>, `${A}.${string}`>;

/** A union of codes written out by hand (an error class's own codes), checked against the
 *  catalogue: `Catalogued<'audit.spool_full' | 'audit.typo'>` fails the typecheck on the typo. */
export type Catalogued<T extends Code> = T;

const BY_CODE = new Map<string, CodeEntry>(CODES.map((c) => [c.code, c]));

/** The catalogue row of a code, or undefined for a code sluice does not emit. */
export function codeEntry(code: string): CodeEntry | undefined {
  return BY_CODE.get(code);
}

/** The HTTP status the catalogue gives a code that ends a request with an answer. Throws for a
 *  code without one: a caller that answers with a code's status must name a code that has one. */
export function codeStatus(code: Code): number {
  const status = BY_CODE.get(code)?.status;
  if (status === undefined) throw new Error(`${code} has no HTTP status in the code catalogue (api/src/codes.ts)`);
  return status;
}

/** Whether a string is a catalogued code. */
export function isCode(code: string): code is Code {
  return BY_CODE.has(code);
}

/** The areas (the part before the dot) of all codes, sorted. */
export function codeAreas(): string[] {
  return [...new Set(CODES.map((c) => c.code.split('.')[0]!))].sort();
}
