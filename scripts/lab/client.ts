/**
 * Real client behaviours for the lab: node:http, raw sockets and curl. Every request carries
 * `X-Test-Id` so production's and the test environment's records can be matched.
 *
 *   node client.js behaviours --host 10.213.1.2 [--host6 fd00:213:1::2] [--port 80]
 *   node client.js load --host 10.213.1.2 --requests 20000 --connections 64 [--max-seconds 120]
 *     [--rate R] [--http10]
 *   node client.js expect-gated --host 10.213.1.2 --gate FILE
 * Prints one JSON line: { ids: [...answered ids], failures: [...], seconds, rps }.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const argv = process.argv.slice(2);
const mode = argv[0];
const opt = (name: string, dflt?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const HOST = opt('host')!;
const HOST6 = opt('host6');
const PORT = Number(opt('port', '80'));
const ids: string[] = [];
const failures: string[] = [];
let seq = 0;
const newId = (tag: string) => `${tag}-${++seq}`;

function request(o: { id: string; method?: string; path?: string; headers?: Record<string, string | string[]>; body?: Buffer; agent?: http.Agent | false; chunks?: Buffer[]; expect?: boolean; host?: string }): Promise<void> {
  return new Promise((resolve) => {
    const headers: Record<string, string | string[]> = { 'X-Test-Id': o.id, ...(o.headers ?? {}) };
    if (o.body && !o.chunks) headers['Content-Length'] = String(o.body.length);
    if (o.expect) headers['Expect'] = '100-continue';
    const req = http.request({ host: o.host ?? HOST, port: PORT, method: o.method ?? 'GET', path: o.path ?? '/', headers, agent: o.agent ?? undefined }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) ids.push(o.id);
        else failures.push(`${o.id}: status ${res.statusCode}`);
        resolve();
      });
    });
    req.on('error', (e) => {
      failures.push(`${o.id}: ${e.message}`);
      resolve();
    });
    if (o.expect) {
      req.on('continue', () => req.end(o.body));
      req.flushHeaders();
    } else if (o.chunks) {
      let i = 0;
      const next = () => {
        if (i < o.chunks!.length) {
          req.write(o.chunks![i++]);
          setTimeout(next, 1);
        } else req.end();
      };
      next();
    } else req.end(o.body);
  });
}

/**
 * Writes raw bytes on one connection, optionally in pieces `gapMs` apart, and reads until every
 * request in `reqIds` has had its 200 (or the time is up).
 */
function raw(reqIds: string[], data: Buffer, pieces?: number[], host = HOST, gapMs = 1): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port: PORT });
    s.setNoDelay(true);
    let got = '';
    let finished = false;
    const answered = () => (got.match(/HTTP\/1\.[01] 200/g) ?? []).length;
    const done = (err?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const n = answered();
      for (let i = 0; i < reqIds.length; i++) if (i < n) ids.push(reqIds[i]); else failures.push(`${reqIds[i]}: ${err ?? 'no response'}`);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(() => done('timeout'), 30_000);
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (answered() >= reqIds.length) done();
    });
    s.on('error', (e) => done(e.message));
    s.on('close', () => done('closed'));
    s.on('connect', async () => {
      if (!pieces) {
        s.write(data);
        return;
      }
      let off = 0;
      for (let i = 0; off < data.length && !finished; i++) {
        const n = pieces[i % pieces.length];
        s.write(data.subarray(off, off + n));
        off += n;
        await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

/** Writes `data` in `pieces` equal parts, `gapMs` apart, on one connection. */
function rawPaced(reqIds: string[], data: Buffer, pieces: number, gapMs: number): Promise<void> {
  const size = Math.ceil(data.length / pieces);
  return raw(reqIds, data, [size], HOST, gapMs);
}

function curl(id: string, extra: string[], host = HOST): void {
  const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `X-Test-Id: ${id}`, ...extra, `http://${host.includes(':') ? `[${host}]` : host}:${PORT}/curl/${id}`], { encoding: 'utf8', timeout: 30_000 });
  if (r.stdout === '200') ids.push(id);
  else failures.push(`${id}: curl ${r.status} ${r.stdout} ${r.stderr}`);
}

async function behaviours(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-client-'));
  try {
    // Sequential keep-alive on one connection, with varied targets and headers.
    const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 30; i++) await request({ id: newId('keepalive'), path: `/ka/${i}?q=${i}&x=%20y#`.replace('#', ''), headers: { Accept: 'text/html', 'X-Seq': String(i) }, agent: ka });
    for (let i = 0; i < 5; i++) await request({ id: newId('keepalive-post'), method: 'POST', path: '/ka/post', body: randomBytes(100 + i * 1000), headers: { 'Content-Type': 'application/octet-stream' }, agent: ka });
    ka.destroy();

    // Pipelining: ten requests written at once on one connection.
    {
      const pids: string[] = [];
      let buf = '';
      for (let i = 0; i < 10; i++) {
        const id = newId('pipelined');
        pids.push(id);
        buf += i % 3 === 2 ? `POST /pipe/${i} HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\nContent-Length: 5\r\n\r\nhello` : `GET /pipe/${i} HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\n\r\n`;
      }
      await raw(pids, Buffer.from(buf, 'latin1'));
    }

    // Many parallel connections.
    {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 40 });
      await Promise.all(Array.from({ length: 40 }, async (_, c) => {
        for (let i = 0; i < 5; i++) await request({ id: newId('parallel'), path: `/par/${c}/${i}`, agent });
      }));
      agent.destroy();
    }

    // Short Connection: close connections.
    for (let i = 0; i < 20; i++) await request({ id: newId('close'), path: `/close/${i}`, headers: { Connection: 'close' }, agent: false });

    // Chunked uploads, small and 50 KB, written in pieces.
    await request({ id: newId('chunked'), method: 'POST', path: '/chunked/small', chunks: [Buffer.from('hel'), Buffer.from('lo')], agent: false });
    {
      const big = randomBytes(50 * 1024);
      const chunks: Buffer[] = [];
      for (let o = 0; o < big.length; o += 7000) chunks.push(big.subarray(o, o + 7000));
      await request({ id: newId('chunked-50k'), method: 'PUT', path: '/chunked/50k', chunks, agent: false });
    }
    // Chunked with extensions and a trailer, raw.
    {
      const id = newId('chunked-raw');
      await raw([id], Buffer.from(`POST /chunked/raw HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n4;ext=1\r\nWiki\r\n6;name="quoted"\r\npedia \r\n0\r\nX-Checksum: abc\r\n\r\n`, 'latin1'));
    }

    // Expect: 100-continue with a 30 KB body.
    await request({ id: newId('expect'), method: 'POST', path: '/expect', body: randomBytes(30 * 1024), expect: true, agent: false });

    // 200 KiB and 2 MiB bodies.
    await request({ id: newId('body-200k'), method: 'POST', path: '/upload/200k', body: randomBytes(200 * 1024), agent: false });
    await request({ id: newId('body-2m'), method: 'POST', path: '/upload/2m', body: randomBytes(2 * 1024 * 1024), agent: false });

    // A 6 KB URL and a 16 KB cookie.
    await request({ id: newId('long-url'), path: `/long?${'a'.repeat(6 * 1024)}`, agent: false });
    await request({ id: newId('cookie-16k'), path: '/cookie', headers: { Cookie: `session=${'c'.repeat(16 * 1024)}` }, agent: false });

    // 40 headers with duplicates and odd case, exactly as written.
    {
      const id = newId('headers-40');
      let h = `GET /headers HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\n`;
      for (let i = 0; i < 36; i++) h += `${i % 2 ? 'x-Mixed-CASE' : `X-H${i}`}: value ${i}\r\n`;
      h += 'accept: a\r\nACCEPT: b\r\n\r\n';
      await raw([id], Buffer.from(h, 'latin1'));
    }

    // HTTP/1.0, with and without a body.
    {
      const a = newId('http10');
      await raw([a], Buffer.from(`GET /ten HTTP/1.0\r\nX-Test-Id: ${a}\r\n\r\n`, 'latin1'));
      const b = newId('http10-post');
      await raw([b], Buffer.from(`POST /ten HTTP/1.0\r\nHost: prod.example\r\nX-Test-Id: ${b}\r\nContent-Length: 11\r\n\r\nhello world`, 'latin1'));
    }

    // A request written in tiny pieces (1-3 bytes per segment).
    {
      const id = newId('tiny');
      const body = 'a tiny body written byte by byte';
      await raw([id], Buffer.from(`POST /tiny HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'latin1'), [1, 2, 3]);
    }

    // 100 requests pipelined in one write, mixed with bodies.
    {
      const pids: string[] = [];
      let buf = '';
      for (let i = 0; i < 100; i++) {
        const id = newId('pipelined-100');
        pids.push(id);
        const body = 'b'.repeat(i * 7);
        buf += i % 2 ? `PUT /pipe100/${i} HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\nContent-Length: ${body.length}\r\n\r\n${body}` : `GET /pipe100/${i}?x=${i} HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\n\r\n`;
      }
      await raw(pids, Buffer.from(buf, 'latin1'));
    }

    // Odd but valid header sections: empty value, padded value, 100 fields, obs-text, a POST with no body.
    {
      const a = newId('odd-headers');
      let h = `GET /odd HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${a}\r\nX-Empty:\r\nX-Pad:    padded value   \r\nX-Latin: caf\xe9\r\n`;
      for (let i = 0; i < 100; i++) h += `X-Many-${i % 7}: ${i}\r\n`;
      await raw([a], Buffer.from(`${h}\r\n`, 'latin1'));
      const b = newId('post-no-body');
      await raw([b], Buffer.from(`POST /nobody HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${b}\r\n\r\n`, 'latin1'));
    }

    // A chunked body in 500 tiny chunks, and a 64 KB body written slowly (16 pieces over ~1 s).
    {
      const id = newId('chunked-tiny');
      let body = '';
      for (let i = 0; i < 500; i++) body += `1\r\n${String.fromCharCode(97 + (i % 26))}\r\n`;
      await raw([id], Buffer.from(`POST /chunks HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`, 'latin1'));
      const slow = newId('slow-body');
      const big = randomBytes(64 * 1024);
      const head = Buffer.from(`POST /slow HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${slow}\r\nContent-Length: ${big.length}\r\n\r\n`, 'latin1');
      await rawPaced([slow], Buffer.concat([head, big]), 16, 60);
    }

    // A keep-alive connection that goes quiet for longer than the daemon's hole timeout, then carries on.
    {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      await request({ id: newId('quiet-keepalive'), path: '/quiet/1', agent });
      await new Promise((r) => setTimeout(r, 2500));
      await request({ id: newId('quiet-keepalive'), path: '/quiet/2', agent, method: 'POST', body: randomBytes(5000) });
      agent.destroy();
    }

    // Other methods.
    for (const m of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']) await request({ id: newId(`method-${m}`), method: m, path: `/m/${m}`, body: m === 'PUT' || m === 'PATCH' ? Buffer.from('{"a":1}') : undefined, agent: false });

    // curl: a real third-party client, incl. its own chunked and Expect behaviour.
    const f = path.join(tmp, 'body');
    fs.writeFileSync(f, randomBytes(2 * 1024 * 1024));
    curl(newId('curl-get'), []);
    curl(newId('curl-post-2m'), ['--data-binary', `@${f}`]);
    curl(newId('curl-chunked'), ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${f}`]);
    curl(newId('curl-http10'), ['--http1.0', '-d', 'a=b']);

    // IPv6 client to production.
    if (HOST6) {
      const agent6 = new http.Agent({ keepAlive: true, maxSockets: 2 });
      for (let i = 0; i < 10; i++) await request({ id: newId('ipv6'), host: HOST6, path: `/v6/${i}`, agent: agent6, method: i % 2 ? 'POST' : 'GET', body: i % 2 ? randomBytes(3000) : undefined });
      agent6.destroy();
      curl(newId('curl-ipv6'), [], HOST6);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// --vary-header NAME --values N: each load request carries NAME: v<i mod N> (sticky sampling tests).
const varyHeader = opt('vary-header');
const varyValues = Number(opt('values', '10'));

/** A designed mix for policy tests: methods, API and static paths, credentials, old URLs. */
async function policyMix(): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const jobs: Array<Promise<void>> = [];
  for (let i = 0; i < 20; i++) {
    jobs.push(request({ id: newId('api-get'), path: `/api/items/${i}?page=${i}`, agent, headers: { Authorization: `Bearer secret-${i}`, Cookie: `session=s${i}`, 'X-Env': 'prod' } }));
    jobs.push(request({ id: newId('api-post'), method: 'POST', path: `/api/items`, body: Buffer.from(`{"n":${i}}`), agent, headers: { 'Content-Type': 'application/json' } }));
    jobs.push(request({ id: newId('api-delete'), method: 'DELETE', path: `/api/items/${i}`, agent }));
    jobs.push(request({ id: newId('static'), path: `/static/app-${i}.css`, agent }));
    jobs.push(request({ id: newId('old'), path: `/v1/user/${i}/ping`, agent }));
    jobs.push(request({ id: newId('bot'), path: `/api/bot/${i}`, agent, headers: { 'User-Agent': 'Googlebot/2.1' } }));
  }
  await Promise.all(jobs);
  agent.destroy();
}

/**
 * --requests N over --connections C, as fast as answers come; with --rate R, request i starts at
 * i/R s (a paced offer, e.g. for freezing the daemon mid-run); with --http10, each request is an
 * HTTP/1.0 GET on a connection of its own (production closes it after answering).
 */
async function load(): Promise<void> {
  const total = Number(opt('requests', '20000'));
  const conns = Number(opt('connections', '64'));
  const rate = Number(opt('rate', '0'));
  const http10 = argv.includes('--http10');
  const deadline = Date.now() + Number(opt('max-seconds', '120')) * 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: conns }, async () => {
    while (next < total && Date.now() < deadline) {
      const i = next++;
      if (rate > 0) {
        const wait = start + (i * 1000) / rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const id = `load-${i}`;
      if (http10) await raw([id], Buffer.from(`GET /load/${i} HTTP/1.0\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\n\r\n`, 'latin1'));
      else await request({ id, path: `/load/${i}`, agent, headers: varyHeader ? { [varyHeader]: `v${i % varyValues}` } : undefined });
    }
  }));
  agent.destroy();
}

/**
 * One `Expect: 100-continue` POST whose body is sent only once the file --gate exists: a test
 * freezes the daemon between the head and the body. Prints "HEAD" once production said 100.
 */
async function expectGated(): Promise<void> {
  const gate = opt('gate')!;
  const id = newId('expect-gated');
  const body = Buffer.alloc(2000, 0x61);
  await new Promise<void>((resolve) => {
    const s = net.connect({ host: HOST, port: PORT });
    let got = '';
    let continued = false;
    const done = (err?: string) => {
      clearTimeout(timer);
      if (err) failures.push(`${id}: ${err}`);
      else ids.push(id);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(() => done('timeout'), 60_000);
    s.on('connect', () => s.write(`POST /expect-gated HTTP/1.1\r\nHost: prod.example\r\nX-Test-Id: ${id}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`, 'latin1'));
    s.on('error', (e) => done(e.message));
    s.on('data', async (d) => {
      got += d.toString('latin1');
      if (!continued && got.includes(' 100 ')) {
        continued = true;
        process.stdout.write('HEAD\n');
        const deadline = Date.now() + 30_000;
        while (!fs.existsSync(gate) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        s.write(body);
      }
      if (/HTTP\/1\.1 200/.test(got)) done();
    });
  });
}

const t0 = performance.now();
const run = mode === 'load' ? load : mode === 'policy' ? policyMix : mode === 'expect-gated' ? expectGated : behaviours;
run().then(() => {
  const seconds = (performance.now() - t0) / 1000;
  // Exit only once the (large) line is flushed: stdout to a pipe is asynchronous.
  process.stdout.write(`${JSON.stringify({ ids, failures, seconds, rps: ids.length / seconds })}\n`, () => process.exit(0));
});
