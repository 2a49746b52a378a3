// LLM facts: endpoint shapes of OpenAI- and Anthropic-style APIs, model/stream from a bounded
// body prefix wherever the SDK puts them, prompt size, and the buffering protocol.
import { describe, expect, test } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { bodyPrefixNeeded, deriveFacts, moreBodyNeeded, parseFactsConfig } from '../../src/facts/derive-facts.ts';
import type { FactsRequest } from '../../src/facts/derive-facts.ts';

const post = (host: string, path: string, body: Buffer, headers: Record<string, string> = {}): FactsRequest => ({
  method: 'POST',
  host,
  path,
  query: {},
  headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
});
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

describe('endpoints and providers', () => {
  test.each([
    ['api.openai.com', '/v1/chat/completions', 'openai', 'chat.completions'],
    ['api.openai.com', '/v1/responses', 'openai', 'responses'],
    ['api.openai.com', '/v1/completions', 'openai', 'completions'],
    ['api.openai.com', '/v1/embeddings', 'openai', 'embeddings'],
    ['api.anthropic.com', '/v1/messages', 'anthropic', 'messages'],
    ['openrouter.ai', '/api/v1/chat/completions', 'openai', 'chat.completions'],
    ['generativelanguage.googleapis.com', '/v1beta/openai/chat/completions', 'openai', 'chat.completions'],
    ['llm.internal', '/v1/messages', 'anthropic', 'messages'],
  ])('%s%s → %s %s', (host, path, provider, endpoint) => {
    const body = json({ model: 'm', messages: [] });
    expect(deriveFacts(post(host, path, body), body).llm).toMatchObject({ provider, endpoint, model: 'm', prompt_bytes: body.length });
  });

  test('the host map decides the provider over the path shape', () => {
    const config = parseFactsConfig({ llmHosts: { 'gateway.corp': 'anthropic' } });
    const body = json({ model: 'claude' });
    expect(deriveFacts(post('gateway.corp', '/v1/chat/completions', body), body, config).llm?.provider).toBe('anthropic');
  });

  test('Azure OpenAI: the deployment in the path is the model', () => {
    const body = json({ messages: [] });
    expect(deriveFacts(post('acme.openai.azure.com', '/openai/deployments/gpt-4o-prod/chat/completions', body), body).llm).toEqual({
      provider: 'openai',
      endpoint: 'chat.completions',
      operation: 'inference',
      model: 'gpt-4o-prod',
      prompt_bytes: body.length,
      stream: false,
    });
  });

  test('not inference on other hosts: no facts', () => {
    expect(deriveFacts({ method: 'GET', host: 'llm.internal', path: '/v1/models', query: {}, headers: {} }).llm).toBeUndefined();
    expect(deriveFacts({ method: 'POST', host: 'llm.internal', path: '/v1/files', query: {}, headers: {} }).llm).toBeUndefined();
  });

  test.each([
    ['GET', 'api.openai.com', '/v1/models', 'models', 'models'],
    ['GET', 'api.openai.com', '/v1/models/gpt-5', 'models', 'models'],
    ['POST', 'api.openai.com', '/v1/files', 'files', 'files'],
    ['GET', 'api.openai.com', '/v1/files/file-1/content', 'files', 'files'],
    ['POST', 'api.openai.com', '/v1/uploads', 'uploads', 'uploads'],
    ['POST', 'api.openai.com', '/v1/fine_tuning/jobs', 'fine_tuning', 'fine_tuning'],
    ['POST', 'api.openai.com', '/v1/fine-tunes', 'fine_tuning', 'fine_tuning'],
    ['POST', 'api.openai.com', '/v1/batches', 'batches', 'batches'],
    ['POST', 'api.openai.com', '/v1/assistants', 'assistants', 'assistants'],
    ['POST', 'api.openai.com', '/v1/threads/t/messages', 'threads', 'threads'],
    ['POST', 'api.openai.com', '/v1/vector_stores', 'vector_stores', 'vector_stores'],
    ['GET', 'api.openai.com', '/v1/chat/completions', 'other', 'other'],
    ['DELETE', 'api.openai.com', '/v1/files/file-1', 'files', 'files'],
    ['POST', 'api.openai.com', '/v1/audio/transcriptions', 'other', 'other'],
    ['POST', 'api.openai.com', '/', 'other', 'other'],
    ['POST', 'api.anthropic.com', '/v1/messages/batches', 'messages.batches', 'batches'],
    ['POST', 'api.anthropic.com', '/v1/files', 'files', 'files'],
    ['POST', 'api.anthropic.com', '/v1/messages/count_tokens', 'messages.count_tokens', 'inference'],
  ])('%s %s%s on a configured LLM host → %s (%s)', (method, host, path, endpoint, operation) => {
    const req: FactsRequest = { method, host, path, query: {}, headers: { 'content-length': '7' } };
    expect(deriveFacts(req, Buffer.from('{"a":1}')).llm).toMatchObject({ endpoint, operation, prompt_bytes: 7 });
  });

  test('a file upload is not buffered for scanning; inference is', () => {
    const upload: FactsRequest = { method: 'POST', host: 'api.openai.com', path: '/v1/files', query: {}, headers: { 'content-type': 'multipart/form-data; boundary=x' } };
    expect(bodyPrefixNeeded(upload)).toBe(0);
    expect(deriveFacts(upload, Buffer.from('{"model":"decoy"}')).llm).not.toHaveProperty('model');
    expect(bodyPrefixNeeded({ ...upload, path: '/v1/chat/completions' })).toBeGreaterThan(0);
  });
});

describe('model and stream from the body prefix', () => {
  test('model after a large messages array (Python SDK order) and stream', () => {
    // openai-python sends {"messages": …, "model": …, "stream": …}; anthropic-python puts max_tokens and messages first.
    const messages = [{ role: 'user', content: 'x'.repeat(100_000) + '"}],"model":"decoy"' }];
    const body = json({ max_tokens: 100, messages, model: 'gpt-5', stream: true });
    const req = post('api.openai.com', '/v1/chat/completions', body);
    expect(deriveFacts(req, body).llm).toEqual({ provider: 'openai', endpoint: 'chat.completions', operation: 'inference', model: 'gpt-5', stream: true, prompt_bytes: body.length });
  });

  test('a duplicate model member: the last one counts, as the API parses it', () => {
    const body = Buffer.from('{"model":"cheap","stream":false,"messages":[],"model":"expensive"}');
    expect(deriveFacts(post('api.openai.com', '/v1/chat/completions', body), body).llm?.model).toBe('expensive');
  });

  test('buffering protocol: ask until the object closes or the cap is hit', () => {
    const body = json({ messages: [{ role: 'user', content: 'hi' }], model: 'gpt-5' });
    const req = post('api.openai.com', '/v1/chat/completions', body);
    expect(bodyPrefixNeeded(req)).toBe(256 * 1024);
    for (let n = 0; n < body.length; n++) expect(moreBodyNeeded(req, body.subarray(0, n))).toBeGreaterThan(0);
    expect(moreBodyNeeded(req, body)).toBe(0);
    const huge = Buffer.alloc(256 * 1024, 0x20);
    expect(moreBodyNeeded(req, huge)).toBe(0);
  });

  test('truncated at the cap: model unknown, stream unknown, size from Content-Length', () => {
    const body = json({ messages: [{ role: 'user', content: 'y'.repeat(300_000) }], model: 'late' });
    const req = post('api.anthropic.com', '/v1/messages', body);
    const facts = deriveFacts(req, body.subarray(0, bodyPrefixNeeded(req))).llm!;
    expect(facts).toEqual({ provider: 'anthropic', endpoint: 'messages', operation: 'inference', prompt_bytes: body.length });
  });

  test('chunked (no Content-Length): prompt_bytes is the body seen', () => {
    const body = json({ model: 'm' });
    const req: FactsRequest = { method: 'POST', host: 'api.openai.com', path: '/v1/responses', query: {}, headers: { 'transfer-encoding': 'chunked' } };
    expect(deriveFacts(req, body).llm?.prompt_bytes).toBe(body.length);
    expect(deriveFacts(req).llm).toEqual({ provider: 'openai', endpoint: 'responses', operation: 'inference', prompt_bytes: 0 });
  });

  test('gzip-encoded request bodies are read; not JSON yields no model', () => {
    const raw = json({ model: 'gpt-5', input: 'hi' });
    const body = gzipSync(raw);
    expect(deriveFacts(post('api.openai.com', '/v1/responses', body, { 'content-encoding': 'gzip' }), body).llm?.model).toBe('gpt-5');
    const text = Buffer.from('model=gpt-5');
    expect(deriveFacts(post('api.openai.com', '/v1/responses', text), text).llm).toEqual({ provider: 'openai', endpoint: 'responses', operation: 'inference', prompt_bytes: text.length });
  });
});
