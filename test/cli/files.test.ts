/**
 * Recording and reading files through the command line, to a real HTTP server on loopback:
 * --pcap DIR of gzip files, --loop, --speed (timing kept), --summary-json, unsupported input as
 * one line and a non-zero exit, and a full disk (a tiny tmpfs in a mount namespace the test
 * makes) that costs recorded frames, counted, and not one replayed request.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Recorder } from '../../src/capture/record.js';
import type { SummaryJson } from '../../src/metrics/summary.js';
import { pcapFile } from '../fixtures/frames.js';
import { requestFrames } from '../fixtures/requests.js';

const CLI = resolve(fileURLToPath(import.meta.url), '../../../src/cli/main.js');
const isRoot = process.getuid?.() === 0;

let root = '';
let server: http.Server;
let port = 0;
/** Each request's X-Id and when it arrived (ms). */
let got: Array<{ id: string; at: number }> = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mr-files-'));
  server = http.createServer((req, res) => {
    got.push({ id: String(req.headers['x-id']), at: performance.now() });
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  server.close();
  await rm(root, { recursive: true, force: true });
});

/** Writes `conns` connections of `requests` each through the recorder into a new directory. */
async function recording(name: string, requests: number, gapUs: number, o: { gzip?: boolean; conns?: number; maxFileBytes?: number } = {}): Promise<string> {
  const dir = join(root, name);
  mkdirSync(dir);
  const rec = new Recorder({ dir, maxFileBytes: o.maxFileBytes ?? 0, maxFileMs: 0, maxFiles: 0, gzip: o.gzip ?? false, bufferBytes: 64 << 20, snapLen: 262144 });
  const frames = Array.from({ length: o.conns ?? 1 }, (_, c) => requestFrames(requests, 1_700_000_000_000_000 + c * 7, gapUs, 40000 + c)).flat().sort((a, b) => a.ts - b.ts);
  for (const f of frames) rec.frame(f.data, 0, f.data.length, f.data.length, undefined, f.ts, 'vxlan0');
  await rec.close();
  return dir;
}

function run(args: string[], wrap: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const argv = ['--destination', `http://127.0.0.1:${port}`, '--metrics-port', '0', '--log-level', 'warn', ...args];
    const p = wrap.length ? spawn(wrap[0], [...wrap.slice(1), process.execPath, CLI, ...argv]) : spawn(process.execPath, [CLI, ...argv]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (code) => {
      clearTimeout(t);
      done({ code, stdout, stderr });
    });
  });
}

function value(s: SummaryJson, name: string, labels: Record<string, string> = {}): number {
  const v = s[name];
  if (typeof v === 'number') return v;
  return (v ?? []).filter((e) => Object.entries(labels).every(([k, x]) => String(e[k]) === x)).reduce((a, e) => a + e.value, 0);
}

test('--pcap DIR of rotated gzip files, --loop 2: every request twice, in order; --summary-json - is the registry in full', async () => {
  const dir = await recording('loop', 300, 1000, { gzip: true, conns: 3, maxFileBytes: 64 * 1024 });
  got = [];
  const r = await run(['--pcap', dir, '--loop', '2', '--summary-json', '-']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as SummaryJson;
  const ids = got.map((g) => g.id);
  assert.equal(ids.length, 1800);
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  assert.equal(counts.size, 900);
  assert.ok([...counts.values()].every((c) => c === 2), 'each request exactly twice: once per pass');
  assert.equal(value(s, 'mirror_replay_requests_parsed_total'), 1800);
  assert.equal(value(s, 'mirror_replay_requests_replayed_total'), 1800);
  assert.equal(value(s, 'mirror_replay_requests_dropped_total'), 0);
  assert.equal(value(s, 'mirror_replay_capture_packets_total'), 2 * 903);
  // Every reason is there, at 0: the JSON is the registry, not a digest of it.
  assert.equal(value(s, 'mirror_replay_requests_dropped_total', { reason: 'queue_full' }), 0);
  assert.ok(Array.isArray(s.mirror_replay_decode_skipped_total));
  assert.match(r.stderr, /run summary/);
  assert.match(r.stderr, /requests +parsed 1800 \(h1 1800\); replayed 1800 \(h1 1800\); dropped 0/);
});

test('--speed 1 keeps the recorded gaps between requests (within 10%); --speed 2 halves them', async () => {
  const dir = await recording('timed', 20, 100_000);
  for (const speed of [1, 2]) {
    got = [];
    const r = await run(['--pcap', dir, '--speed', String(speed)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(got.length, 20);
    const gaps = got.slice(1).map((g, i) => g.at - got[i].at).sort((a, b) => a - b);
    const want = 100 / speed;
    const span = got[19].at - got[0].at;
    assert.ok(Math.abs(span - 19 * want) <= 0.1 * 19 * want, `--speed ${speed}: 19 gaps took ${span.toFixed(0)} ms, recorded ${19 * want}`);
    const median = gaps[Math.floor(gaps.length / 2)];
    assert.ok(Math.abs(median - want) <= 0.1 * want, `--speed ${speed}: median gap ${median.toFixed(1)} ms, recorded ${want}`);
  }
});

test('unsupported input is one clear line and a non-zero exit', async () => {
  const bad = join(root, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'junk.pcap'), Buffer.from('this is not a capture file at all'));
  const link = pcapFile([Buffer.alloc(60)]);
  link.writeUInt32LE(147, 20); // LINKTYPE_USER0
  writeFileSync(join(root, 'user0.pcap'), link);
  mkdirSync(join(root, 'empty'));
  for (const [path, msg] of [
    [join(bad, 'junk.pcap'), /not a pcap or pcapng file/],
    [join(root, 'user0.pcap'), /link type 147 is not supported/],
    [join(root, 'empty'), /holds no capture files/],
    [join(root, 'missing.pcap'), /cannot open/],
  ] as const) {
    const r = await run(['--pcap', path]);
    assert.notEqual(r.code, 0, path);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('mirror-replay:'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], msg);
  }
});

test('a full disk costs recorded frames (counted disk_full), never a replayed request', { skip: !isRoot && 'needs root for a mount namespace' }, async () => {
  const src = await recording('enospc-src', 3000, 1000, { conns: 4 });
  const target = join(root, 'tiny');
  mkdirSync(target);
  got = [];
  // A 128 KiB tmpfs, mounted only in this child's own mount namespace.
  const sh = `mount -t tmpfs -o size=128k mr-tiny "${target}" && exec "$@"`;
  const r = await run(['--pcap', src, '--record', target, '--record-max-file-size', '64KiB', '--summary-json', '-'], ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', sh, 'sh']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as SummaryJson;
  assert.equal(got.length, 12_000, 'every request replayed');
  assert.equal(value(s, 'mirror_replay_requests_replayed_total'), 12_000);
  const full = value(s, 'mirror_replay_record_frames_dropped_total', { reason: 'disk_full' });
  const written = value(s, 'mirror_replay_record_frames_written_total');
  assert.ok(full > 0, 'the full disk is counted');
  assert.ok(written > 0, 'what fitted was written');
  assert.equal(written + full, value(s, 'mirror_replay_capture_packets_total'), 'every frame written or counted');
  assert.match(r.stderr, /frames dropped \d+ \(disk_full \d+\)/);
  // The tmpfs was the child's alone: nothing is mounted here.
  assert.equal(spawnSync('findmnt', [target]).status, 1);
});
