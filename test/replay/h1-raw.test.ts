/**
 * One-shot (HTTP/1.0) requests on Node's TCP handle (h1-raw.ts) and on net.Socket: the same bytes on
 * the wire and the same outcome, with the same error codes, for every way a real local server can
 * answer or fail. Each case runs over both transports and compares them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { H1Pool, type H1Exchange, type H1Request } from '../../src/replay/h1-client.js';
import { RawSocket, rawTcp } from '../../src/replay/h1-raw.js';
import { ReplayTimeoutError } from '../../src/errors.js';

type Answer = (sock: net.Socket, request: string) => void;

/** A server that reads one request (head + Content-Length body), records it and lets `answer` act. */
async function server(answer: Answer) {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  let closed = 0;
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      sockets.delete(s);
      closed++;
    });
    let buf = Buffer.alloc(0);
    let answered = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (answered || i < 0) return;
      const m = /\r\ncontent-length: *(\d+)/i.exec(buf.subarray(0, i).toString('latin1'));
      if (buf.length < i + 4 + (m ? Number(m[1]) : 0)) return;
      answered = true;
      seen.push(buf.toString('latin1'));
      answer(s, buf.toString('latin1'));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const s = {
    seen,
    url: new URL(`http://127.0.0.1:${port}`),
    closed: () => closed,
    close: () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        srv.close(() => r());
      }),
  };
  servers.push(s);
  return s;
}
const servers: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const s of servers) await s.close();
});

interface Result {
  code: string | null;
  status: number;
  connected: boolean;
  responseBytes: number;
  body: string;
  /** The exchange went out on the TCP handle (h1-raw.ts), not net.Socket. */
  raw: boolean;
}

function send(pool: H1Pool, req: Partial<H1Request> = {}, onSent?: (ex: H1Exchange) => void): Promise<Result> {
  const parts: Buffer[] = [];
  return new Promise((resolve) => {
    let raw = false;
    const ex = pool.request(
      { method: 'GET', target: '/x', headers: ['Host', 'h'], body: Buffer.alloc(0), chunked: false, trailers: [], minorVersion: 0, ...req },
      {
        onBody: (d, s, e) => parts.push(Buffer.from(d.subarray(s, e))),
        onDone: (err, status, x) => resolve({ code: err ? (err.code ?? 'none') : null, status, connected: x.connected, responseBytes: x.responseBytes, body: Buffer.concat(parts).toString('latin1'), raw }),
      },
    );
    raw = ex.conn?.sock instanceof RawSocket;
    onSent?.(ex);
  });
}

const OK10 = 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** Runs `run` with one-shot requests on the TCP handle and on net.Socket; returns both results. */
async function both<T>(run: (pool: H1Pool) => Promise<T>, url: URL): Promise<{ raw: T; net: T }> {
  const out: Partial<{ raw: T; net: T }> = {};
  for (const rawOneShot of [true, false]) {
    const pool = new H1Pool(url, { maxConnections: 4, rawOneShot });
    out[rawOneShot ? 'raw' : 'net'] = await run(pool);
    assert.equal(pool.open, 0, 'no connection left open');
    pool.destroy();
  }
  return out as { raw: T; net: T };
}

test('this Node.js offers the TCP handle: one-shot requests to an IP address use it, unless told not to', async () => {
  assert.ok(rawTcp(), 'process.binding(tcp_wrap) as expected (else HTTP/1.0 replay falls back to net.Socket, slower)');
  const s = await server((sock) => sock.end(OK10));
  const r = await both((pool) => send(pool), s.url);
  assert.equal(r.raw.raw, true);
  assert.equal(r.net.raw, false);
  const keepAlive = new H1Pool(s.url, { maxConnections: 1 });
  assert.equal((await send(keepAlive, { minorVersion: 1 })).raw, false, 'HTTP/1.1 stays on net.Socket');
  keepAlive.destroy();
});

test('the same bytes on the wire, sizes from empty to beyond the kernel buffer (asynchronous writes)', async () => {
  const s = await server((sock) => sock.end(OK10));
  const body = (n: number) => Buffer.alloc(n, 'abcdefghij');
  const reqs: Array<Partial<H1Request>> = [
    { headers: ['Accept', '*/*', 'X-Latin', 'caf\u00e9'] },
    { method: 'POST', headers: ['Content-Length', '3000'], body: body(3000) },
    { method: 'POST', headers: ['Content-Length', '20000'], body: body(20_000) },
    { method: 'POST', headers: ['Host', 'h'], body: body(5) }, // no length field: HTTP/1.0 sends the body as is
    { method: 'POST', headers: ['Content-Length', String(8 << 20)], body: body(8 << 20) },
  ];
  const r = await both(async (pool) => {
    const from = s.seen.length;
    const results = await Promise.all(reqs.map((q) => send(pool, q)));
    return { results: results.map((x) => [x.code, x.status]), wire: s.seen.slice(from).sort() };
  }, s.url);
  assert.deepEqual(r.raw.results, reqs.map(() => [null, 200]));
  assert.deepEqual(r.raw, r.net);
  assert.ok(r.raw.wire.includes('GET /x HTTP/1.0\r\nAccept: */*\r\nX-Latin: caf\u00e9\r\n\r\n'));
});

test('an answer without a length runs to the close; both transports read the same body', async () => {
  const big = 'x'.repeat(300_000);
  const s = await server((sock) => {
    sock.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n');
    setTimeout(() => sock.end(big), 10);
  });
  const r = await both((pool) => send(pool), s.url);
  assert.equal(r.raw.status, 200);
  assert.equal(r.raw.body, big);
  assert.deepEqual({ ...r.raw, raw: 0 }, { ...r.net, raw: 0 });
});

test('failures end the same way on both: closed before or in the middle of an answer, reset, garbage, refused', async () => {
  const cases: Array<[string, Answer]> = [
    ['closed before an answer', (sock) => sock.end()],
    ['closed mid-answer', (sock) => sock.end('HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc')],
    ['reset mid-answer', (sock) => sock.write('HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc', () => setTimeout(() => sock.resetAndDestroy(), 10))],
    ['garbage', (sock) => sock.end('SMTP ready\r\n\r\n')],
  ];
  for (const [what, answer] of cases) {
    const s = await server(answer);
    const r = await both((pool) => send(pool), s.url);
    assert.notEqual(r.raw.code, null, what);
    assert.deepEqual({ ...r.raw, raw: 0 }, { ...r.net, raw: 0 }, what);
  }
  const probe = net.createServer();
  await new Promise<void>((res) => probe.listen(0, '127.0.0.1', res));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((res) => probe.close(() => res()));
  const refused = await both((pool) => send(pool), new URL(`http://127.0.0.1:${port}`));
  assert.equal(refused.raw.code, 'ECONNREFUSED');
  assert.equal(refused.raw.connected, false);
  assert.deepEqual({ ...refused.raw, raw: 0 }, { ...refused.net, raw: 0 });
});

test('abort (a timeout) while waiting for the answer ends the exchange and closes the connection', async () => {
  const s = await server(() => {}); // never answers
  const r = await both(async (pool) => {
    const closedBefore = s.closed();
    const res = await send(pool, {}, (ex) => setTimeout(() => ex.abort(new ReplayTimeoutError('timed out')), 50));
    await new Promise((w) => setTimeout(w, 50));
    return { code: res.code, connected: res.connected, serverSawClose: s.closed() - closedBefore };
  }, s.url);
  assert.deepEqual(r.raw, { code: 'MR_TIMEOUT', connected: true, serverSawClose: 1 });
  assert.deepEqual(r.raw, r.net);
});

test('an abort before the connection is established closes it too; nothing is reported after', async () => {
  const s = await server((sock) => sock.end(OK10));
  const r = await both(async (pool) => {
    const res = await send(pool, {}, (ex) => ex.abort(new ReplayTimeoutError('at once')));
    await new Promise((w) => setTimeout(w, 50));
    return { code: res.code, connected: res.connected };
  }, s.url);
  assert.deepEqual(r.raw, { code: 'MR_TIMEOUT', connected: false });
  assert.deepEqual(r.raw, r.net);
});
