/**
 * gRPC replay: what a real @grpc/grpc-js client sends is captured by a node:http2 server (as the
 * HTTP/2 reader would hand it on: pseudo-fields apart, regular fields in wire order, the DATA bytes),
 * then replayed through the whole policy chain to a real grpc-js server over h2c. The server must
 * see the same method path, metadata and message bytes; the answers carry grpc-status in trailers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { HttpRequest } from '../../src/http/types.js';
import type { ResponseDigest } from '../../src/http/response.js';
import type { AnswerSink } from '../../src/replay/destination.js';
import { NO_FILTERS } from '../../src/replay/filters.js';
import { NO_REWRITES } from '../../src/replay/rewrite.js';
import { Replayer } from '../../src/replay/replayer.js';
import { Outcomes } from '../fixtures/outcomes.js';

const PROTO = `syntax = "proto3";
package mr.test;
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc Watch (Msg) returns (stream Msg);
}
message Msg { string text = 1; bytes data = 2; int32 n = 3; }
`;

/** Records each stream as the HTTP/2 reader would make it an HttpRequest; answers as a gRPC server would, minimally. */
async function captureServer() {
  const reqs: HttpRequest[] = [];
  const srv = http2.createServer();
  srv.on('session', (s) => s.on('error', () => {}));
  srv.on('stream', (st: http2.ServerHttp2Stream, _h: unknown, _f: unknown, raw: string[]) => {
    st.on('error', () => {});
    const chunks: Buffer[] = [];
    st.on('data', (d: Buffer) => chunks.push(d));
    st.on('end', () => {
      const pseudo = new Map<string, string>();
      const headers: string[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        if (raw[i][0] === ':') pseudo.set(raw[i], raw[i + 1]);
        else headers.push(raw[i], raw[i + 1]);
      }
      reqs.push({ method: pseudo.get(':method')!, target: pseudo.get(':path')!, authority: pseudo.get(':authority'), minorVersion: 1, headers, body: Buffer.concat(chunks), chunked: false, trailers: [], h2: { scheme: pseudo.get(':scheme')!, streamId: st.id! } });
      st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      st.on('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' }));
      // One empty message: a unary call needs it, a stream may carry it.
      st.end(Buffer.alloc(5));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { reqs, port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

interface Got {
  path: string;
  metadata: Record<string, Array<string | Buffer>>;
  message: Buffer;
}

/** A real grpc-js server with byte-for-byte (identity) (de)serializers: it sees the message bytes as sent. */
async function grpcServer() {
  const got: Got[] = [];
  const raw = (b: Buffer) => b;
  const server = new grpc.Server();
  const meta = (m: grpc.Metadata) => {
    const o: Record<string, Array<string | Buffer>> = {};
    for (const k of Object.keys(m.getMap())) o[k] = m.get(k);
    return o;
  };
  server.addService(
    {
      Unary: { path: '/mr.test.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
      Watch: { path: '/mr.test.Echo/Watch', requestStream: false, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
    },
    {
      Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        got.push({ path: '/mr.test.Echo/Unary', metadata: meta(call.metadata), message: call.request });
        if (call.request.includes(Buffer.from('fail-me'))) cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
        else cb(null, call.request);
      },
      Watch: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        got.push({ path: '/mr.test.Echo/Watch', metadata: meta(call.metadata), message: call.request });
        for (let i = 0; i < 3; i++) call.write(Buffer.concat([call.request, Buffer.from([i])]));
        call.end();
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { got, port, close: () => server.forceShutdown() };
}

function sink(): AnswerSink & { got: ResponseDigest | null; reason: string | null } {
  return { snippetBytes: 0, captureJsonBytes: 0, got: null, reason: null, answered(d) { this.got = d; }, failed(r) { this.reason = r; } };
}

const value = (h: string[], name: string) => {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
};

test('grpc-js calls captured as the HTTP/2 reader makes them reach a real grpc-js server: same path, metadata and message bytes; grpc-status in the trailers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mr-grpc-'));
  const cap = await captureServer();
  const dest = await grpcServer();
  try {
    writeFileSync(join(dir, 'echo.proto'), PROTO);
    const def = protoLoader.loadSync(join(dir, 'echo.proto'), { keepCase: true });
    const Echo = (grpc.loadPackageDefinition(def).mr as grpc.GrpcObject).test as grpc.GrpcObject;
    const Client = Echo.Echo as grpc.ServiceClientConstructor;
    const client = new Client(`127.0.0.1:${cap.port}`, grpc.credentials.createInsecure());
    const U = 120;
    const W = 30;
    const big = Buffer.alloc((1 << 20) + 777, 7);
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < U; i++) {
      const md = new grpc.Metadata();
      md.add('x-user', `u${i}`);
      md.add('x-trace-bin', Buffer.from([i & 0xff, 0, 255]));
      const data = i === 0 ? big : Buffer.from(`payload ${i}`);
      const text = i === 1 ? 'fail-me' : `hello ${i}`;
      calls.push(new Promise((resolve) => (client.Unary as (...a: unknown[]) => void)({ text, data, n: i }, md, () => resolve(null))));
    }
    for (let i = 0; i < W; i++) {
      const md = new grpc.Metadata();
      md.add('x-user', `w${i}`);
      const call = (client.Watch as (...a: unknown[]) => grpc.ClientReadableStream<unknown>)({ text: `watch ${i}`, n: i }, md);
      calls.push(new Promise((resolve) => {
        call.on('data', () => {});
        call.on('error', () => resolve(null));
        call.on('end', () => resolve(null));
      }));
    }
    await Promise.all(calls);
    client.close();
    assert.equal(cap.reqs.length, U + W, 'every call captured');
    const captured = cap.reqs[0];
    assert.equal(captured.method, 'POST');
    assert.equal(value(captured.headers, 'te'), 'trailers');
    assert.equal(value(captured.headers, 'content-type'), 'application/grpc');

    const out = new Outcomes();
    const replayer = new Replayer({ destinations: [`http://127.0.0.1:${dest.port}?protocol=h2c&max-concurrency=32`], keepHost: false, sampling: { percentage: 100, by: 'random' }, rate: 0, filters: NO_FILTERS, rewrites: NO_REWRITES, maxConcurrency: 8, maxQueue: 1000, maxQueueBytes: 64 << 20, timeoutMs: 5000 }, out);
    const flow = { clientAddr: '192.0.2.7', clientPort: 40000, serverAddr: '10.9.9.9', serverPort: 50051, ipVersion: 4 };
    const answers = cap.reqs.map(() => sink());
    cap.reqs.forEach((r, i) => replayer.submit(r, flow, [answers[i]]));
    const end = Date.now() + 20_000;
    while (answers.some((a) => !a.got && !a.reason) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await replayer.drain(1000);

    assert.deepEqual(out.drops, {});
    assert.equal(out.replayedN, U + W);
    assert.equal(dest.got.length, U + W, 'each call reached the grpc-js server once');
    const key = (path: string, user: string) => `${path} ${user}`;
    const byUser = new Map(dest.got.map((g) => [key(g.path, String(g.metadata['x-user'][0])), g]));
    assert.equal(byUser.size, U + W);
    for (const r of cap.reqs) {
      const user = value(r.headers, 'x-user')!;
      const g = byUser.get(key(r.target, user));
      assert.ok(g, `${r.target} ${user} arrived`);
      // The message bytes: the gRPC frame's payload after the 5-byte length prefix.
      assert.ok(g.message.equals(r.body.subarray(5)), `${r.target} ${user}: message bytes`);
      // Every field the client sent that grpc-js hands on as metadata (it keeps grpc-*, te, content-type and accept-encoding to itself).
      for (let i = 0; i < r.headers.length; i += 2) {
        const k = r.headers[i];
        if (k.startsWith('grpc-') || k === 'te' || k === 'content-type' || k === 'accept-encoding') continue;
        const want = k.endsWith('-bin') ? Buffer.from(r.headers[i + 1], 'base64') : r.headers[i + 1];
        assert.deepEqual(g.metadata[k], [want], `${k} of ${user}`);
      }
      assert.ok(r.headers.includes('x-trace-bin') || r.target.endsWith('/Watch'));
      assert.deepEqual(g.metadata['x-forwarded-for'], ['192.0.2.7'], 'added as for HTTP/1.x, lower case');
    }
    const unaryBig = byUser.get(key('/mr.test.Echo/Unary', 'u0'))!;
    assert.ok(unaryBig.message.length > 1 << 20);
    // The answers, digested for shadow testing: :status 200, grpc-status in the trailers.
    cap.reqs.forEach((r, i) => {
      const d = answers[i].got!;
      assert.equal(d.status, 200);
      const user = value(r.headers, 'x-user');
      if (user === 'u1') {
        // A failed call is "trailers-only": one HEADERS block ending the stream, digested as the answer's headers.
        assert.equal(d.trailers, undefined);
        assert.equal(value(d.headers, 'grpc-status'), String(grpc.status.NOT_FOUND));
        assert.equal(value(d.headers, 'grpc-message'), 'no%20such%20thing', 'percent-encoded on the wire, as gRPC has it');
        assert.equal(d.bodyLength, 0);
      } else assert.equal(value(d.trailers ?? [], 'grpc-status'), '0', `grpc-status of ${user}`);
      if (r.target.endsWith('/Watch')) assert.equal(d.bodyLength, 3 * (5 + r.body.length - 5 + 1), 'three framed messages');
    });
  } finally {
    cap.close();
    dest.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
