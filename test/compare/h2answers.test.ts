/**
 * Production's HTTP/2 answers read from real bytes: a grpc-js server and a node:http2 server on
 * loopback, real clients, and a TCP relay between them that keeps the server-to-client bytes.
 * Those bytes, cut at random places, go through the shadow stage's production side
 * (production.ts sniffing the SETTINGS frame, then h2answers.ts on src/http2's reader); every
 * stream's answer must come out with the status, body digest and trailers the client saw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { h2AnswerReader } from '../../src/compare/h2answers.js';
import { ProductionSide, type ProductionEvents } from '../../src/compare/production.js';
import type { ResponseDigest } from '../../src/http/response.js';

const LAB_PROTO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/grpc/lab.proto');

/** A relay on loopback to `port` that keeps every byte the server sent. */
async function relay(port: number): Promise<{ port: number; toClient: Buffer[]; close: () => void }> {
  const toClient: Buffer[] = [];
  const socks: net.Socket[] = [];
  const srv = net.createServer((c) => {
    const s = net.connect(port, '127.0.0.1');
    socks.push(c, s);
    c.pipe(s);
    s.on('data', (d: Buffer) => toClient.push(Buffer.from(d)));
    s.pipe(c);
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, toClient, close: () => (socks.forEach((s) => s.destroy()), srv.close()) };
}

/** Feeds `bytes` to a production side in random cuts; returns what it reported. */
function read(bytes: Buffer, seed: number): { answers: Map<number, ResponseDigest>; lost: string[] } {
  const answers = new Map<number, ResponseDigest>();
  const lost: string[] = [];
  const events: ProductionEvents = {
    upgradedToH2: false,
    h2Detected() {},
    requestMethod: () => 'POST',
    onResponse: () => lost.push('http1 answer'),
    onLost: (r) => lost.push(`http1 ${r}`),
    answer: (id, d) => void answers.set(id, d),
    streamLost: (id, r) => void lost.push(`${id} ${r}`),
    connectionLost: (r) => void lost.push(`connection ${r}`),
  };
  const side = new ProductionSide(events, false, { snippetBytes: 0, captureJsonBytes: 0 }, h2AnswerReader);
  let x = seed;
  for (let p = 0; p < bytes.length; ) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = Math.min(bytes.length - p, 1 + (x % 700));
    side.push(bytes, p, n);
    p += n;
  }
  side.end();
  return { answers, lost };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const field = (h: string[] | undefined, name: string) => h?.[h.indexOf(name) + 1];

test("grpc-js: unary and streaming answers, and a failed call's trailers-only answer, per stream", async () => {
  const def = protoLoader.loadSync(LAB_PROTO, { keepCase: true, longs: Number, defaults: true });
  const service = def['mrlab.Lab'] as grpc.ServiceDefinition;
  const server = new grpc.Server();
  server.addService(service, {
    Echo: (call: grpc.ServerUnaryCall<{ id: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, call.request),
    Check: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.NOT_FOUND, details: 'nope' }),
    List: (call: grpc.ServerWritableStream<{ id: string; count: number }, unknown>) => {
      for (let i = 0; i < call.request.count; i++) call.write({ id: `${call.request.id}/${i}`, payload: Buffer.alloc(300, i), n: i });
      call.end();
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const r = await relay(port);
  const Ctor = grpc.makeGenericClientConstructor(service, 'Lab');
  const client = new Ctor(`127.0.0.1:${r.port}`, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => unknown>;
  // What the client sees, by call order: the messages' wire bytes (5-byte gRPC prefix each) and the status.
  const wire = (m: unknown) => {
    const b = service.Echo.responseSerialize(m);
    const h = Buffer.alloc(5);
    h.writeUInt32BE(b.length, 1);
    return Buffer.concat([h, b]);
  };
  const expected: Array<{ body: Buffer; code: number }> = [];
  const calls: Array<Promise<void>> = [];
  for (let k = 0; k < 30; k++) {
    const i = expected.length;
    expected.push({ body: Buffer.alloc(0), code: 0 });
    if (k % 3 === 0) {
      calls.push(new Promise((res) => client.Echo.call(client, { id: `e${k}`, payload: Buffer.alloc(k * 50, k), n: k }, (e: grpc.ServiceError | null, m: unknown) => {
        expected[i] = { body: e ? Buffer.alloc(0) : wire(m), code: e?.code ?? 0 };
        res();
      })));
    } else if (k % 3 === 1) {
      calls.push(new Promise((res) => {
        const parts: Buffer[] = [];
        const s = client.List.call(client, { id: `l${k}`, count: 1 + (k % 5) }) as grpc.ClientReadableStream<unknown>;
        s.on('data', (m: unknown) => parts.push(wire(m)));
        s.on('end', () => {
          expected[i] = { body: Buffer.concat(parts), code: 0 };
          res();
        });
      }));
    } else {
      calls.push(new Promise((res) => client.Check.call(client, { id: `c${k}` }, (e: grpc.ServiceError | null) => {
        expected[i] = { body: Buffer.alloc(0), code: e?.code ?? 0 };
        res();
      })));
    }
  }
  await Promise.all(calls);
  (client as unknown as grpc.Client).close();
  server.forceShutdown();
  r.close();
  const bytes = Buffer.concat(r.toClient);
  for (const seed of [1, 2, 3]) {
    const { answers, lost } = read(bytes, seed);
    assert.deepEqual(lost, []);
    assert.equal(answers.size, 30);
    // grpc-js opens streams 1, 3, 5, ... in call order.
    expected.forEach((e, i) => {
      const d = answers.get(1 + 2 * i)!;
      assert.equal(d.status, 200);
      assert.equal(d.bodySha256, sha(e.body), `stream ${1 + 2 * i}`);
      assert.equal(field(d.trailers, 'grpc-status') ?? field(d.headers, 'grpc-status'), String(e.code));
      if (e.code) assert.equal(d.trailers, undefined, 'a failed call is answered with trailers only');
    });
  }
});

test('node:http2: answers with bodies and trailers, on interleaved streams', async () => {
  const server = http2.createServer((req, res) => {
    const n = Number(req.url?.split('/')[2] ?? 0);
    res.addTrailers({ 'x-n': String(n) });
    res.writeHead(n % 5 === 0 ? 404 : 200, { 'content-type': 'application/octet-stream' });
    res.end(Buffer.alloc(n * 1000, n));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const r = await relay((server.address() as net.AddressInfo).port);
  const session = http2.connect(`http://127.0.0.1:${r.port}`);
  const got = await Promise.all(
    Array.from({ length: 20 }, (_, n) =>
      new Promise<{ status: number; body: Buffer }>((res) => {
        const req = session.request({ ':path': `/n/${n}` });
        const parts: Buffer[] = [];
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => res({ status, body: Buffer.concat(parts) }));
      }),
    ),
  );
  session.close();
  await new Promise((res) => setTimeout(res, 50));
  server.close();
  r.close();
  const { answers, lost } = read(Buffer.concat(r.toClient), 7);
  assert.deepEqual(lost, []);
  got.forEach((g, n) => {
    const d = answers.get(1 + 2 * n)!;
    assert.equal(d.status, g.status);
    assert.equal(d.bodyLength, n * 1000);
    assert.equal(d.bodySha256, sha(g.body));
    assert.deepEqual(d.trailers, ['x-n', String(n)]);
  });
});
