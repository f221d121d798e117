import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Destination, type OutgoingRequest } from '../../src/replay/destination.js';
import { Outcomes } from '../fixtures/outcomes.js';

/** A raw TCP server that records the exact request bytes and answers each request head. */
async function rawServer(answer: (head: string, sock: net.Socket) => void) {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.subarray(0, i + 4).toString('latin1');
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
        let end = i + 4 + (m ? Number(m[1]) : 0);
        if (chunked) {
          const z = buf.indexOf('\r\n0\r\n', i);
          const t = z >= 0 ? buf.indexOf('\r\n\r\n', z + 3) : -1;
          if (t < 0) return;
          end = t + 4;
        }
        if (buf.length < end) return;
        seen.push(buf.subarray(0, end).toString('latin1'));
        buf = buf.subarray(end);
        answer(head, s);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return { seen, port, close: () => { for (const s of sockets) s.destroy(); srv.close(); } };
}
const OK = (_h: string, s: net.Socket) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
const opts = { maxConcurrency: 4, maxQueue: 100, maxQueueBytes: 1 << 20, timeoutMs: 2000 };
const req = (o: Partial<OutgoingRequest> = {}): OutgoingRequest => ({ method: 'GET', target: '/x?y=1', headers: ['Host', 'h'], body: Buffer.alloc(0), chunked: false, trailers: [], minorVersion: 1, ...o });

async function settle(out: Outcomes, n: number, ms = 5000) {
  const end = Date.now() + ms;
  while (out.total < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

test('sends exactly the given request line, headers (order, case, duplicates) and body', async () => {
  const s = await rawServer(OK);
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}`, opts, out);
  d.enqueue(req({ method: 'POST', headers: ['Host', 'h', 'content-LENGTH', '5', 'X-A', '1', 'x-a', '2'], body: Buffer.from('hello') }));
  d.enqueue(req({ method: 'PUT', headers: ['Host', 'h', 'Transfer-Encoding', 'chunked'], body: Buffer.from('abc'), chunked: true, trailers: ['X-T', 'v'] }));
  d.enqueue(req({ method: 'GET', target: '/ten', headers: ['Accept', '*/*'], minorVersion: 0 }));
  await settle(out, 3);
  await d.drain(1000);
  s.close();
  assert.deepEqual(out.statuses, [200, 200, 200]);
  const sorted = [...s.seen].sort();
  assert.ok(sorted.includes('POST /x?y=1 HTTP/1.1\r\nHost: h\r\ncontent-LENGTH: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello'), sorted.join('\n---\n'));
  assert.ok(sorted.includes('PUT /x?y=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: v\r\n\r\n'), sorted.join('\n---\n'));
  assert.ok(sorted.includes('GET /ten HTTP/1.0\r\nAccept: */*\r\n\r\n'), sorted.join('\n---\n'));
});

test('a full queue drops with queue_full and never waits', async () => {
  const s = await rawServer(() => {}); // never answers
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}`, { ...opts, maxConcurrency: 1, maxQueue: 2, timeoutMs: 300 }, out);
  for (let i = 0; i < 10; i++) d.enqueue(req());
  assert.equal(out.drops.queue_full, 7);
  assert.equal(d.queueDepth, 2);
  await settle(out, 10);
  assert.equal(out.drops.timeout, 3);
  await d.drain(100);
  s.close();
});

test('a body-less POST without Content-Length goes out as production sent it: no framing added, nothing altered', async () => {
  const s = await rawServer(OK);
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}`, opts, out);
  d.enqueue(req({ method: 'POST', headers: ['Host', 'h'] }));
  d.enqueue(req({ method: 'GET', headers: ['Host', 'h'] }));
  await settle(out, 2);
  await d.drain(100);
  s.close();
  assert.equal(out.alteredCount, 0);
  assert.deepEqual(out.statuses, [200, 200]);
  assert.deepEqual(s.seen, ['POST /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n', 'GET /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n']);
});

test('connection refused is connect_error; a reset mid-request is upstream_error', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const closedPort = (probe.address() as net.AddressInfo).port;
  probe.close();
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${closedPort}`, opts, out);
  d.enqueue(req());
  d.enqueue(req({ minorVersion: 0 }));
  await settle(out, 2);
  assert.equal(out.drops.connect_error, 2);
  assert.ok(out.errors.every((e) => e === 'ECONNREFUSED'));
  await d.drain(100);

  const s = await rawServer((_h, sock) => sock.destroy());
  const out2 = new Outcomes();
  const d2 = new Destination(`http://127.0.0.1:${s.port}`, opts, out2);
  d2.enqueue(req({ method: 'POST', body: Buffer.from('x'), headers: ['Content-Length', '1'] }));
  await settle(out2, 1);
  assert.equal(out2.drops.upstream_error, 1);
  await d2.drain(100);
  s.close();
});

test('drain: what is still queued or in flight at the deadline is counted as shutdown', async () => {
  const s = await rawServer(() => {});
  const out = new Outcomes();
  const d = new Destination(`http://127.0.0.1:${s.port}`, { ...opts, maxConcurrency: 2, timeoutMs: 10_000 }, out);
  for (let i = 0; i < 5; i++) d.enqueue(req());
  await new Promise((r) => setTimeout(r, 100));
  await d.drain(200);
  await settle(out, 5);
  assert.equal(out.drops.shutdown, 5);
  d.enqueue(req());
  assert.equal(out.drops.shutdown, 6);
  s.close();
});
