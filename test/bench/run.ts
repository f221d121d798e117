/**
 * `npm run bench [-- NAME... [--quick] [--profile]]`: runs the benchmarks, each in its own
 * process (a fresh heap, its own flags), one after another, and prints their tables.
 * With no NAME it runs them all; those that need root or a tool say so and are skipped.
 *
 *   npm run bench                     everything (about 5 minutes)
 *   npm run bench -- decode http      just those
 *   npm run bench -- --list           the names
 *   npm run bench:lab                 capture + lab sweep (root)
 *   npm run bench -- lab --save       write the committed test/bench/results/ (without --save: a temporary directory)
 *   npm run bench -- peers --peer-bin PATH   beside the aws-samples Go replayer (root)
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasTool, isRoot, resultsDir } from './util.js';

interface Bench {
  name: string;
  what: string;
  /** Node flags for the benchmark's process. */
  flags?: string[];
  needsRoot?: boolean;
  tools?: Array<{ cmd: string; install: string }>;
}

export const BENCHES: Bench[] = [
  { name: 'decode', what: 'Decoder.decode frames/s, ns/frame, GCs per 1M frames', flags: ['--expose-gc'] },
  { name: 'reassembly', what: 'FlowTable segments/s in order and 10% reordered, GCs per 1M segments', flags: ['--expose-gc'] },
  { name: 'http', what: 'HttpRequestParser requests/s and MB/s', flags: ['--expose-gc'] },
  { name: 'hpack', what: 'HPACK decode ns per header block of real connections vs a latin1 copy; H2RequestReader ns/request', flags: [] },
  { name: 'replay', what: 'Destination req/s to a node:net sink at 1/8/64 connections vs undici Pool and node:http', flags: [] },
  { name: 'churn', what: 'HTTP/1.0 GETs, a new connection each: client CPU µs/request of Destination vs a C epoll loop and a minimal node:net loop, at 1/8/64', flags: [] },
  { name: 'offline', what: 'whole daemon on a pcap: small GETs, 4 KB and 1 MB POSTs (--profile: CPU profile top frames; --alloc: bytes allocated per request)', flags: [] },
  { name: 'timing', what: '--speed 1 and 2 on a 30-second recording: gaps between requests vs recorded', flags: [] },
  { name: 'rss', what: 'daemon RSS with 10,000 open flows holding out-of-order data', flags: [] },
  { name: 'capture', what: 'VXLAN flood into the lab adapter: pps, kernel drops, daemon CPU', needsRoot: true, tools: [{ cmd: 'gcc', install: 'apt-get install -y gcc' }] },
  { name: 'freeze', what: 'the daemon frozen (SIGSTOP) under paced load, and HTTP/1.0 beside busy loops: lost, kernel drops, ring bytes per request', needsRoot: true },
  { name: 'lab', what: 'lab sweep with wrk: offered load vs loss; writes lab-sweep.{md,svg,json} to the results directory', needsRoot: true, tools: [{ cmd: 'wrk', install: 'apt-get install -y wrk' }] },
  { name: 'peers', what: 'side by side with the aws-samples Go replayer (--peer-bin PATH) in the lab: keep-alive and churn, lost, CPU per request, peak RSS', needsRoot: true, tools: [{ cmd: 'wrk', install: 'apt-get install -y wrk' }] },
];

/** Options whose next word is their value, not a benchmark name (`--peer-bin PATH`, `--only TEXT`). */
const VALUE_OPTIONS = new Set(['--workers', '--only', '--peer-bin', '--peer-wait']);

const here = path.dirname(fileURLToPath(import.meta.url));

async function child(): Promise<void> {
  const name = process.argv[3];
  const mod = (await import(path.join(here, `${name}.js`))) as { main: () => Promise<void> };
  await mod.main();
}

function runOne(b: Bench, rest: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...(b.flags ?? []), fileURLToPath(import.meta.url), '--child', b.name, ...rest], { stdio: 'inherit' });
    p.on('exit', (c) => resolve(c));
  });
}

async function parent(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--list')) {
    for (const b of BENCHES) console.log(`${b.name.padEnd(11)} ${b.what}${b.needsRoot ? ' (root)' : ''}`);
    return;
  }
  const names = argv.filter((a, i) => !a.startsWith('--') && !VALUE_OPTIONS.has(argv[i - 1]));
  const unknown = names.filter((a) => !BENCHES.some((b) => b.name === a));
  if (unknown.length) {
    console.error(`unknown benchmark ${unknown.join(', ')}; one of: ${BENCHES.map((b) => b.name).join(', ')}`);
    process.exitCode = 2;
    return;
  }
  const rest = argv.filter((a) => !names.includes(a));
  const chosen = names.length ? BENCHES.filter((b) => names.includes(b.name)) : BENCHES;
  const t0 = Date.now();
  const failed: string[] = [];
  console.log(`mirror-replay benchmarks on ${process.version}, ${(await import('node:os')).cpus().length} CPUs (${(await import('node:os')).cpus()[0]?.model ?? '?'})`);
  console.log(`result files go to ${resultsDir()}${argv.includes('--save') ? '' : ' (--save: the committed test/bench/results/)'}`);
  for (const b of chosen) {
    console.log(`\n## ${b.name}: ${b.what}`);
    if (b.needsRoot && !isRoot) {
      console.log(`skipped: needs root (network namespaces). Run as root: sudo npm run bench -- ${b.name}`);
      continue;
    }
    const missing = (b.tools ?? []).filter((t) => !hasTool(t.cmd));
    if (missing.length) {
      console.log(`skipped: needs ${missing.map((t) => `${t.cmd} (${t.install})`).join(', ')}`);
      continue;
    }
    const s = Date.now();
    const code = await runOne(b, rest);
    console.log(`(${b.name}: ${((Date.now() - s) / 1000).toFixed(1)} s${code === 0 ? '' : `, exit ${code}`})`);
    if (code !== 0) failed.push(b.name);
  }
  console.log(`\nall done in ${((Date.now() - t0) / 1000).toFixed(0)} s${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
  if (failed.length) process.exitCode = 1;
}

if (process.argv[2] === '--child') await child();
else await parent();
