/**
 * --record's writer: what it writes reads back frame for frame (bytes, lengths, link types,
 * capture times) through our reader and through tshark (when installed); rotation by size, the
 * cap on files, gzip; a full buffer and a full disk are counted drops, never a stall or a throw.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapFileSource } from '../../src/capture/pcap.js';
import { Recorder, type RecordOptions } from '../../src/capture/record.js';
import { LINK_ETHERNET, LINK_RAW } from '../../src/linktypes.js';
import { requestFrames } from '../fixtures/requests.js';

let root = '';
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mr-record-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

function opts(o: Partial<RecordOptions> = {}): RecordOptions {
  const dir = join(root, `r${n++}`);
  spawnSync('mkdir', ['-p', dir]);
  return { dir, maxFileBytes: 0, maxFileMs: 0, maxFiles: 0, gzip: false, bufferBytes: 64 << 20, snapLen: 262144, ...o };
}

interface Got {
  data: Buffer;
  wireLen: number;
  linkType?: number;
  ts?: number;
}

async function readBack(path: string): Promise<Got[]> {
  const got: Got[] = [];
  await new PcapFileSource(path).run((buf, off, capLen, wireLen, linkType, ts) => got.push({ data: Buffer.from(buf.subarray(off, off + capLen)), wireLen, linkType, ts }));
  return got;
}

function files(dir: string): string[] {
  return readdirSync(dir).sort().map((f) => join(dir, f));
}

/** tshark reads the file without a word on stderr (other than running as root) and counts `frames`. */
function tsharkReads(file: string, frames: number): void {
  if (!hasTshark) return;
  const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.split('\n').filter((l) => l && !/Running as user "root"/.test(l)).join('\n'), '', `tshark warns about ${file}`);
  assert.equal(r.stdout.trim().split('\n').filter(Boolean).length, frames);
}

test('record: frames read back byte for byte with lengths, link types and capture times; files rotate by size and each stands alone', async () => {
  const o = opts({ maxFileBytes: 64 * 1024 });
  const rec = new Recorder(o);
  const frames = requestFrames(600);
  for (const f of frames) rec.frame(f.data, 0, f.data.length, f.data.length + 4, LINK_ETHERNET, f.ts, 'vxlan0');
  // A second interface with another link type mid-file gets its own description.
  const raw = frames[1].data.subarray(14);
  rec.frame(raw, 0, raw.length, raw.length, LINK_RAW, frames[600].ts + 1000, 'tun0');
  await rec.close();
  const fs = files(o.dir);
  assert.ok(fs.length >= 2, `rotated into ${fs.length} files`);
  for (const f of fs) assert.match(f, /mirror-replay-\d{8}T\d{6}\.\d{3}Z-\d{6}\.pcapng$/);
  const got = await readBack(o.dir);
  assert.equal(got.length, 602);
  frames.forEach((f, i) => {
    assert.deepEqual(got[i].data, f.data);
    assert.equal(got[i].wireLen, f.data.length + 4);
    assert.equal(got[i].linkType, LINK_ETHERNET);
    assert.equal(got[i].ts, f.ts);
  });
  assert.deepEqual(got[601].data, raw);
  assert.equal(got[601].linkType, LINK_RAW);
  assert.deepEqual(rec.counters.dropped, { buffer_full: 0, disk_full: 0, write_error: 0 });
  assert.equal(rec.counters.framesWritten, 602);
  let seen = 0;
  for (const f of fs) {
    const part = await readBack(f);
    assert.ok(readFileSync(f).length <= 64 * 1024, 'a file stays within --record-max-file-size');
    tsharkReads(f, part.length);
    seen += part.length;
  }
  assert.equal(seen, 602);
  if (hasTshark) {
    const r = spawnSync('tshark', ['-r', fs[fs.length - 1], '-T', 'fields', '-e', 'frame.interface_name'], { encoding: 'utf8' });
    assert.deepEqual([...new Set(r.stdout.trim().split('\n'))].sort(), ['tun0', 'vxlan0']);
  }
});

test('record: --record-max-files keeps the newest files; --record-gzip writes .pcapng.gz that read back (ours and tshark)', async () => {
  const o = opts({ maxFileBytes: 64 * 1024, maxFiles: 2, gzip: true });
  const rec = new Recorder(o);
  const frames = requestFrames(1500);
  for (const f of frames) rec.frame(f.data, 0, f.data.length, f.data.length, undefined, f.ts, 'vxlan0');
  await rec.close();
  const fs = files(o.dir);
  assert.equal(fs.length, 2);
  assert.ok(rec.counters.filesDeleted >= 1);
  assert.equal(rec.counters.filesOpened, rec.counters.filesDeleted + 2);
  for (const f of fs) {
    assert.match(f, /\.pcapng\.gz$/);
    assert.deepEqual([...readFileSync(f).subarray(0, 2)], [0x1f, 0x8b]);
    tsharkReads(f, (await readBack(f)).length);
  }
  // The two newest files hold the last frames, in order, up to the very last.
  const got = await readBack(o.dir);
  const tail = frames.slice(frames.length - got.length);
  assert.deepEqual(got.map((g) => g.data), tail.map((f) => f.data));
});

test('record: a full buffer drops frames with a count (buffer_full) and never blocks; what was written is whole', async () => {
  const o = opts({ bufferBytes: 256 * 1024 });
  const rec = new Recorder(o);
  const frames = requestFrames(5000);
  // All at once, without yielding: the writer cannot run, so the buffer fills.
  for (const f of frames) rec.frame(f.data, 0, f.data.length, f.data.length, undefined, f.ts, 'vxlan0');
  assert.ok(rec.buffered <= 256 * 1024);
  await rec.close();
  const c = rec.counters;
  assert.ok(c.dropped.buffer_full > 0);
  assert.equal(c.framesWritten + c.dropped.buffer_full, frames.length);
  const got = await readBack(o.dir);
  assert.equal(got.length, c.framesWritten);
  assert.deepEqual(got.map((g) => g.data), frames.slice(0, got.length).map((f) => f.data));
});

test('record: a directory that cannot be written counts write_error and throws nowhere', async () => {
  const o = opts();
  const rec = new Recorder({ ...o, dir: join(o.dir, 'gone') });
  const errors: string[] = [];
  const r2 = new Recorder({ ...o, dir: join(o.dir, 'gone') }, (reason) => errors.push(reason));
  for (const r of [rec, r2]) for (const f of requestFrames(10)) r.frame(f.data, 0, f.data.length, f.data.length, undefined, f.ts, 'vxlan0');
  await rec.close();
  await r2.close();
  assert.equal(rec.counters.dropped.write_error, 11);
  assert.ok(errors.length >= 1 && errors.every((e) => e === 'write_error'));
});
