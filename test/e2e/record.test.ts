/**
 * Record now, replay later, on the namespace lab: the daemon records while it replays a broad
 * set of real client behaviours; tshark reads every file it wrote without a warning; replaying
 * the recording (--pcap DIR --speed 0) to the test environment gives every request of the run
 * again, byte-faithful, none twice. The same for real captures of the same run made by tcpdump
 * (-i any: Linux cooked SLL2, classic pcap) and tshark (pcapng), when they are installed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { compare, readRecords } from '../../scripts/lab/compare.js';
import { Lab, ROOT, sleep, TEST_HOST } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const has = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const DAEMON = path.join(ROOT, 'dist/src/cli/main.js');

let lab: Lab;
let recDir = '';
const captures: Array<{ what: string; file: string; proc: ChildProcess }> = [];
/** What each capture tool said (its drop count at exit). */
const said = new Map<string, string>();

before(async () => {
  if (skip) return;
  lab = new Lab(`mr-rec-${process.pid}`);
  recDir = path.join(lab.dir, 'recording');
  await lab.up();
  await lab.startRecorders();
  if (has('tcpdump')) captures.push({ what: 'tcpdump -i any (pcap, Linux cooked)', file: path.join(lab.dir, 'any.pcap'), proc: lab.spawnIn('adapter', 'tcpdump', ['-i', 'any', '-B', '65536', '-w', path.join(lab.dir, 'any.pcap'), `tcp dst port 80 and not dst host ${TEST_HOST}`]) });
  if (has('tshark')) captures.push({ what: 'tshark -i vxlan0 (pcapng)', file: path.join(lab.dir, 'vx.pcapng'), proc: lab.spawnIn('adapter', 'tshark', ['-i', 'vxlan0', '-B', '64', '-w', path.join(lab.dir, 'vx.pcapng'), '-f', 'tcp dst port 80']) });
  for (const c of captures) c.proc.stderr?.on('data', (d: Buffer) => said.set(c.what, (said.get(c.what) ?? '') + d.toString()));
  await sleep(2000); // the capture tools have opened their sockets
  await lab.startDaemon(['--record', recDir, '--record-max-file-size', '256KiB', '--workers', '1']);
});

after(async () => {
  if (lab) await lab.down();
});

/** Replays `file` from the adapter to the test environment; the test records it received, in order. */
function replay(file: string): { records: ReturnType<typeof readRecords>; stderr: string } {
  const before = lab.lines(lab.testLog);
  const r = lab.run('adapter', process.execPath, [DAEMON, '--pcap', file, '--speed', '0', '--destination', `http://${TEST_HOST}`, '--metrics-port', '0', '--log-level', 'warn'], 120_000);
  assert.equal(r.status, 0, r.stderr);
  return { records: readRecords(lab.testLog).slice(before), stderr: r.stderr };
}

test('a recording of a lab run: tshark reads it cleanly; replayed from the directory it gives every request once, byte-faithful', { skip, timeout: 300_000 }, async () => {
  const res = await lab.client('behaviours');
  assert.deepEqual(res.failures, []);
  await lab.waitForTest(30_000);
  // The capture tools hand over their last buffered packets before they are stopped.
  await sleep(2000);
  for (const c of captures) c.proc.kill('SIGINT');
  assert.equal(await lab.stopDaemon(), 0);
  const prod = readRecords(lab.prodLog);
  assert.equal(prod.length, res.ids.length);

  const files = fs.readdirSync(recDir).sort();
  assert.ok(files.length >= 2, `rotated into ${files.length} files`);
  for (const f of files) {
    assert.match(f, /^mirror-replay-\d{8}T\d{6}\.\d{3}Z-\d{6}\.pcapng$/);
    if (!has('tshark')) continue;
    const t = spawnSync('tshark', ['-r', path.join(recDir, f)], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.stderr.split('\n').filter((l) => l && !/Running as user "root"/.test(l)).join('\n'), '', `tshark warns about ${f}`);
  }

  const { records, stderr } = replay(recDir);
  const c = compare(prod, records, { destinationHost: TEST_HOST, keepHost: false });
  assert.deepEqual(c.missing, []);
  assert.deepEqual(c.duplicated, []);
  assert.deepEqual(c.unexpected, []);
  assert.deepEqual(c.mismatches, []);
  assert.equal(c.matched, prod.length);
  assert.match(stderr, new RegExp(`replayed ${prod.length} \\(h1 ${prod.length}\\); dropped 0`));
});

test('real captures of the same run (tcpdump: pcap, Linux cooked; tshark: pcapng) replay every request once', { skip: skip || (captures.length === 0 && !has('tcpdump') && !has('tshark') && 'neither tcpdump nor tshark is installed'), timeout: 300_000 }, async () => {
  const prod = readRecords(lab.prodLog);
  for (const cap of captures) {
    await new Promise<void>((r) => (cap.proc.exitCode !== null ? r() : cap.proc.on('exit', () => r())));
    const { records, stderr } = replay(cap.file);
    const c = compare(prod, records, { destinationHost: TEST_HOST, keepHost: false });
    const why = `${cap.what}\n${said.get(cap.what) ?? ''}\n${stderr}`;
    // A tool that lost packets itself (a busy machine) cannot give every request: say so plainly.
    assert.doesNotMatch(said.get(cap.what) ?? '', /[1-9]\d* packets? dropped by kernel/, why);
    assert.deepEqual([c.missing.length, c.duplicated, c.unexpected, c.mismatches], [0, [], [], []], why);
    assert.equal(c.matched, prod.length, cap.what);
  }
});
