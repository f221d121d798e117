/**
 * scripts/lab-net.sh: the four-namespace AWS mirroring look-alike. Brings a lab up under the
 * prefix mr-t-<pid>, checks that the client reaches prod over IPv4 and IPv6, that the adapter's
 * vxlan0 (made with vxlan-up.sh) receives every frame of prod's eth0 in both directions, 2 MiB
 * uploads and downloads included, and that down removes it all. Needs root.
 *
 * Counting rule used below: vxlan0's rx counters count frames before GRO, and its rx_bytes leave
 * out the 14-byte inner Ethernet header that the veth counters on prod's eth0 include.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../../scripts/lab/harness.js';

const LAB = join(ROOT, 'scripts', 'lab-net.sh');
const VXLAN_UP = join(ROOT, 'scripts', 'vxlan-up.sh');
const PREFIX = `mr-t-${process.pid}`;
const NS = {
  client: `${PREFIX}-client`,
  prod: `${PREFIX}-prod`,
  adapter: `${PREFIX}-adapter`,
  test: `${PREFIX}-test`,
};
const PORT = 8080;
const MIB2 = 2 * 1024 * 1024;
const INNER_ETHERNET = 14;
const MSS = 1448; // 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps)

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: Buffer): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, input, maxBuffer: 8 * MIB2 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function lab(args: string[]): Run {
  return run('bash', [LAB, ...args]);
}

function haveRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') {
    assert.fail('needs root for network namespaces: CI must run these tests as root');
  }
  t.skip('needs root for network namespaces');
  return false;
}

function namespaces(): string[] {
  return run('ip', ['netns', 'list']).stdout
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name.startsWith(`${PREFIX}-`));
}

interface Counters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
}

function counters(ns: string, dev: string): Counters {
  const r = run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev]);
  assert.equal(r.status, 0, r.stderr);
  const [link] = JSON.parse(r.stdout) as Array<{
    stats64: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } };
  }>;
  const { rx, tx } = link.stats64;
  return { rxPackets: rx.packets, rxBytes: rx.bytes, txPackets: tx.packets, txBytes: tx.bytes };
}

function delta(after: Counters, before: Counters): Counters {
  return {
    rxPackets: after.rxPackets - before.rxPackets,
    rxBytes: after.rxBytes - before.rxBytes,
    txPackets: after.txPackets - before.txPackets,
    txBytes: after.txBytes - before.txBytes,
  };
}

/** What prod's eth0 saw (both directions) and what the adapter's vxlan0 received meanwhile. */
interface Mirrored {
  prod: Counters;
  adapter: Counters;
}

/**
 * Runs `traffic`, then waits (at most 5 s) until the adapter has received as many frames as
 * prod's eth0 carried in and out: mirrored frames cross a backlog queue and may lag a little.
 *
 * The links also carry frames of their own at any moment (router solicitations, MLD reports), so
 * the adapter's window must enclose prod's: its counters are read first and last. Read the other
 * way round, a report crossing between the two first readings counts at prod and not at the adapter.
 */
async function mirrored(traffic: () => void): Promise<Mirrored> {
  const adapter0 = counters(NS.adapter, 'vxlan0');
  const prod0 = counters(NS.prod, 'eth0');
  traffic();
  const prod = delta(counters(NS.prod, 'eth0'), prod0);
  let adapter = delta(counters(NS.adapter, 'vxlan0'), adapter0);
  const deadline = Date.now() + 5_000;
  // Frames and bytes both: a small frame (an ND probe) can make up the count while a big one still lags.
  const behind = (): boolean => adapter.rxPackets < prod.rxPackets + prod.txPackets || adapter.rxBytes + INNER_ETHERNET * adapter.rxPackets < prod.rxBytes + prod.txBytes;
  while (behind() && Date.now() < deadline) {
    await sleep(50);
    adapter = delta(counters(NS.adapter, 'vxlan0'), adapter0);
  }
  return { prod, adapter };
}

function assertAllMirrored({ prod, adapter }: Mirrored, what: string): void {
  const frames = prod.rxPackets + prod.txPackets;
  const bytes = prod.rxBytes + prod.txBytes;
  assert.ok(frames > 0, `${what}: prod's eth0 carried nothing`);
  assert.ok(
    adapter.rxPackets >= frames,
    `${what}: prod's eth0 carried ${prod.rxPackets} in + ${prod.txPackets} out, the adapter got ${adapter.rxPackets}`,
  );
  assert.ok(
    adapter.rxBytes + INNER_ETHERNET * adapter.rxPackets >= bytes,
    `${what}: prod's eth0 carried ${bytes} bytes, the adapter got ${adapter.rxBytes} (+14 per frame)`,
  );
}

const SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.method === 'POST') {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => res.end(String(n)));
    return;
  }
  const n = Number(new URL(req.url, 'http://x').searchParams.get('bytes') ?? 0);
  res.setHeader('content-length', n);
  res.end(Buffer.alloc(n, 0x78));
}).listen(${PORT}, '::', () => console.log('listening'));
`;

/** Starts the HTTP server inside a namespace and resolves once it listens (at most 10 s). */
async function startServer(ns: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server in ${ns} did not listen in 10 s: ${stderr}`)), 10_000);
    child.stdout!.on('data', (c: Buffer) => {
      if (c.toString().includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server in ${ns} exited with ${code}: ${stderr}`));
    });
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
  await exited;
  clearTimeout(timer);
}

function curl(url: string, extra: string[] = [], input?: Buffer, ns = NS.client): string {
  const r = run('ip', ['netns', 'exec', ns, 'curl', '-sS', '-g', '--max-time', '20', ...extra, url], input);
  assert.equal(r.status, 0, `curl ${url}: ${r.stderr}`);
  return r.stdout;
}

test('lab-net.sh refuses a prefix that does not start with mr, and bad usage', () => {
  for (const prefix of ['lab', 'xmr-lab', 'mr/../x', 'mr lab', `mr${'x'.repeat(40)}`]) {
    for (const cmd of ['up', 'down']) {
      const r = lab([cmd, prefix]);
      assert.equal(r.status, 3, `${cmd} ${JSON.stringify(prefix)}: ${r.stderr}`);
      assert.match(r.stderr, /bad prefix/);
    }
  }
  assert.equal(lab([]).status, 2);
  assert.equal(lab(['up']).status, 2);
  assert.equal(lab(['sideways', 'mr-x']).status, 2);
  assert.equal(lab(['up', 'mr-x', '--bogus']).status, 2);
});

test('lab-net.sh up: client reaches prod, every frame of prod\'s eth0 reaches the adapter; down cleans up', async (t) => {
  if (!haveRoot(t)) return;
  lab(['down', PREFIX]); // a leftover of a killed run with the same pid
  const servers: ChildProcess[] = [];
  try {
    const up = lab(['up', PREFIX]);
    assert.equal(up.status, 0, up.stderr);
    assert.match(up.stdout, /adapter link: eth0/);
    assert.deepEqual(namespaces().sort(), Object.values(NS).sort());

    await t.test('up again exits 4 and tells to run down first', () => {
      const r = lab(['up', PREFIX, '--quiet']);
      assert.equal(r.status, 4, r.stderr);
      assert.match(r.stderr, /already exists; run '.*down mr-t-\d+' first/);
      assert.equal(namespaces().length, 4, 'the refused up removed nothing');
    });

    await t.test('the adapter takes vxlan0 on eth0 from its default route', () => {
      const r = run('ip', ['netns', 'exec', NS.adapter, 'bash', VXLAN_UP, '--vni', '1']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /created vxlan0: vxlan id 1 dev eth0 dstport 4789/);
      assert.match(r.stdout, /vxlan0: mtu 8951; eth0: mtu 9001/);
    });

    servers.push(await startServer(NS.prod));

    await t.test('client reaches prod over TCP on IPv4 and IPv6, and both directions are mirrored', async () => {
      // The client's window lies inside prod's (read after prod's first, before its last): a frame
      // of the link's own between two readings would otherwise count at the client only.
      let client: Counters | undefined;
      const m = await mirrored(() => {
        const client0 = counters(NS.client, 'eth0');
        assert.equal(curl(`http://10.213.1.2:${PORT}/?bytes=5`), 'xxxxx');
        assert.equal(curl(`http://[fd00:213:1::2]:${PORT}/?bytes=3`), 'xxx');
        // Read before prod's counters are: a veth counts the peer's rx when it transmits.
        client = delta(counters(NS.client, 'eth0'), client0);
      });
      assert.ok(client !== undefined && client.txPackets >= 10 && client.rxPackets >= 10, 'two TCP connections ran');
      assert.ok(m.prod.rxPackets >= client.txPackets, 'what the client sent is what prod received');
      assertAllMirrored(m, 'two small GETs');
    });

    await t.test('a 2 MiB upload (prod\'s ingress) is mirrored without loss, in wire-sized frames', async () => {
      const body = Buffer.alloc(MIB2, 0x61);
      const m = await mirrored(() => {
        assert.equal(curl(`http://10.213.1.2:${PORT}/`, ['--data-binary', '@-'], body), String(MIB2));
      });
      assertAllMirrored(m, '2 MiB upload');
      assert.ok(m.adapter.rxBytes >= MIB2, `adapter got ${m.adapter.rxBytes} bytes`);
      assert.ok(
        m.adapter.rxPackets >= Math.ceil(MIB2 / MSS),
        `${m.adapter.rxPackets} frames for 2 MiB: super-frames got into the mirror`,
      );
    });

    await t.test('a 2 MiB download (prod\'s egress) is mirrored without loss, in wire-sized frames', async () => {
      const m = await mirrored(() => {
        const got = curl(`http://10.213.1.2:${PORT}/?bytes=${MIB2}`, ['-o', '/dev/null', '-w', '%{size_download}']);
        assert.equal(got, String(MIB2));
      });
      assertAllMirrored(m, '2 MiB download');
      assert.ok(m.prod.txBytes >= MIB2, 'the download left through prod\'s eth0');
      assert.ok(m.adapter.rxBytes >= MIB2, `adapter got ${m.adapter.rxBytes} bytes`);
      assert.ok(m.adapter.rxPackets >= Math.ceil(MIB2 / MSS), `${m.adapter.rxPackets} frames for 2 MiB`);
    });

    await t.test('the adapter reaches the test environment on 10.213.3.2; the client cannot', async () => {
      servers.push(await startServer(NS.test));
      assert.equal(curl(`http://10.213.3.2:${PORT}/?bytes=4`, [], undefined, NS.adapter), 'xxxx');
      const r = run('ip', ['netns', 'exec', NS.client, 'curl', '-sS', '--max-time', '5', `http://10.213.3.2:${PORT}/`]);
      assert.notEqual(r.status, 0, 'the client has no route to the test namespace');
    });

    for (const child of servers.splice(0)) await stop(child);

    await t.test('down removes every namespace and is safe to run again', () => {
      let r = lab(['down', PREFIX]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(namespaces(), []);
      r = lab(['down', PREFIX]);
      assert.equal(r.status, 0, r.stderr);
    });
  } finally {
    for (const child of servers) await stop(child);
    lab(['down', PREFIX]);
  }
  assert.deepEqual(namespaces(), [], 'namespaces left behind');
});
