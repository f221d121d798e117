/**
 * Real HTTP/2 traffic on loopback for the tests: an h2c node:http2 server that records every
 * request it received (fields in wire order, body, trailers), a TCP proxy in front of it that
 * tees both directions of each connection, and the clients that talk to it (node:http2, curl,
 * nghttp). The tees are what a mirror would carry.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Received {
  method: string;
  path: string;
  authority: string | undefined;
  scheme: string;
  /** Regular fields, flat, as the server's rawHeaders gave them. */
  headers: string[];
  body: Buffer;
  trailers: string[];
  streamId: number;
}

export interface Tee {
  toServer: Buffer[];
  toClient: Buffer[];
}

export interface Lab {
  port: number;
  received: Received[];
  tees: Tee[];
  close(): Promise<void>;
}

/** Flat raw header list → [pseudo map, regular fields]. */
function splitRaw(raw: string[]): [Map<string, string>, string[]] {
  const pseudo = new Map<string, string>();
  const regular: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].startsWith(':')) pseudo.set(raw[i], raw[i + 1]);
    else regular.push(raw[i], raw[i + 1]);
  }
  return [pseudo, regular];
}

/**
 * Starts the server and the tee proxy. The server answers 200 with a body echoing the path,
 * and trailers (grpc-status) when the request carried trailers, like a gRPC server would.
 */
export async function startLab(): Promise<Lab> {
  const received: Received[] = [];
  const server = http2.createServer({ maxSessionMemory: 64 });
  server.on('stream', (stream: http2.ServerHttp2Stream, _headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    const raw = rawHeaders;
    const [pseudo, regular] = splitRaw(raw);
    const chunks: Buffer[] = [];
    let trailers: string[] = [];
    stream.on('trailers', (_t: http2.IncomingHttpHeaders, _f: number, rawT?: string[]) => {
      trailers = rawT ?? Object.entries(_t).flatMap(([k, v]) => (k.startsWith(':') ? [] : [k, String(v)]));
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      received.push({
        method: pseudo.get(':method')!, path: pseudo.get(':path')!, authority: pseudo.get(':authority'), scheme: pseudo.get(':scheme')!,
        headers: regular, body: Buffer.concat(chunks), trailers, streamId: stream.id!,
      });
      if (stream.destroyed || stream.closed) return;
      const withTrailers = trailers.length > 0;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: withTrailers });
      if (withTrailers) stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
      stream.end(`you asked for ${pseudo.get(':path')}`);
    });
    stream.on('error', () => {});
  });
  // In front of the server: prior knowledge goes straight to it; an h2c upgrade request is answered
  // 101 and the connection handed over (node:http2 does not do the upgrade itself, so the upgrade
  // request's own stream 1 gets no answer: the test reads the client's side).
  const front = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 3) return;
      if (buf.subarray(0, 3).toString('latin1') === 'PRI') return handOff(buf);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      sock.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
      handOff(buf.subarray(i + 4));
    };
    const handOff = (rest: Buffer): void => {
      sock.removeListener('data', onData);
      sock.pause();
      if (rest.length > 0) sock.unshift(rest);
      server.emit('connection', sock);
    };
    sock.on('data', onData);
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const target = (front.address() as net.AddressInfo).port;

  const tees: Tee[] = [];
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((c) => {
    const tee: Tee = { toServer: [], toClient: [] };
    tees.push(tee);
    const s = net.connect(target, '127.0.0.1');
    sockets.add(c);
    sockets.add(s);
    c.on('data', (d) => { tee.toServer.push(Buffer.from(d)); s.write(d); });
    s.on('data', (d) => { tee.toClient.push(Buffer.from(d)); c.write(d); });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
    c.on('close', () => sockets.delete(c));
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as net.AddressInfo).port;
  return {
    port,
    received,
    tees,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
      await new Promise((r) => front.close(r));
      await new Promise((r) => server.close(r));
    },
  };
}

export interface ClientRequest {
  method: string;
  path: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer;
  trailers?: Record<string, string>;
}

/** One node:http2 session, every request at once (streams interleave), then closed. */
export async function nodeClient(port: number, reqs: ClientRequest[]): Promise<number[]> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  const statuses = await Promise.all(reqs.map((r) => new Promise<number>((resolve, reject) => {
    const st = session.request({ ':method': r.method, ':path': r.path, ...r.headers }, { endStream: !r.body && !r.trailers, waitForTrailers: !!r.trailers });
    let status = 0;
    st.on('response', (h) => (status = Number(h[':status'])));
    if (r.trailers) st.on('wantTrailers', () => st.sendTrailers(r.trailers!));
    st.on('data', () => {});
    st.on('end', () => resolve(status));
    st.on('error', reject);
    if (r.body) {
      // In pieces, so DATA frames of different streams interleave.
      const b = r.body;
      const step = 40_000;
      let o = 0;
      const next = (): void => {
        if (o >= b.length) { st.end(); return; }
        const piece = b.subarray(o, o + step);
        o += step;
        if (st.write(piece)) setImmediate(next);
        else st.once('drain', next);
      };
      next();
    } else if (r.trailers) st.end();
  })));
  await new Promise<void>((r) => session.close(r));
  return statuses;
}

/** curl with prior knowledge: the URLs on one connection. */
export async function curl(port: number, args: string[], paths: string[]): Promise<void> {
  await run('curl', ['-sS', '--http2-prior-knowledge', '--max-time', '20', ...args, ...paths.map((p) => `http://127.0.0.1:${port}${p}`), '-o', '/dev/null'], { timeout: 30_000 });
}

/** nghttp (nghttp2's client): the URIs concurrently on one connection. */
export async function nghttp(port: number, args: string[], paths: string[]): Promise<void> {
  await run('nghttp', ['-n', '-t', '20', ...args, ...paths.map((p) => `http://127.0.0.1:${port}${p}`)], { timeout: 30_000 });
}

/** Wait until the server has recorded `n` requests (bounded). */
export async function waitFor(lab: Lab, n: number, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (lab.received.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}
