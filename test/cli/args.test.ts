import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { normaliseSingleDash, parseArgs, parseBytes, parseDuration } from '../../src/cli/args.js';
import { ConfigError } from '../../src/errors.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

test("the Go replayer's single-dash flags work unchanged", () => {
  const c = parseArgs(['-destination', 'http://10.0.0.37', '-filter-request-port', '8080', '-percentage', '50', '-percentage-by', 'header', '-percentage-by-header', 'X-User', '-keep-host-header'])!;
  assert.deepEqual(c.destinations, ['http://10.0.0.37']);
  assert.equal(c.port, 8080);
  assert.equal(c.percentage, 50);
  assert.equal(c.percentageBy, 'header');
  assert.equal(c.percentageByHeader, 'X-User');
  assert.equal(c.keepHostHeader, true);
  assert.deepEqual(c.interfaces, ['vxlan0']);
  assert.deepEqual(normaliseSingleDash(['-destination=http://x', '-h', '-v', '-nope']), ['--destination=http://x', '-h', '-v', '-nope']);
});

test('defaults and new flags', () => {
  const c = parseArgs(['--destination', 'http://a:81', '--destination', 'http://b', '--interface', 'vx1', '--interface', 'vx2', '--timeout', '1.5s', '--max-queue-bytes', '1MiB', '--metrics-port', '0'])!;
  assert.deepEqual(c.destinations, ['http://a:81', 'http://b']);
  assert.deepEqual(c.interfaces, ['vx1', 'vx2']);
  assert.equal(c.timeoutMs, 1500);
  assert.equal(c.maxQueueBytes, 1048576);
  assert.equal(c.metricsPort, 0);
  assert.equal(c.port, 80);
  assert.equal(c.percentage, 100);
});

test('ring flags: defaults, sizes and durations, and the environment', () => {
  const d = parseArgs(['--destination', 'http://a'])!;
  assert.equal(d.ringMiB, 64);
  assert.equal(d.ringBlockKiB, 128);
  assert.equal(d.ringBlockTimeoutMs, 100);
  const c = parseArgs(['--destination', 'http://a', '--ring-mb', '256', '--ring-block-size', '1MiB', '--ring-block-timeout', '0.5s'])!;
  assert.equal(c.ringBlockKiB, 1024);
  assert.equal(c.ringBlockTimeoutMs, 500);
  process.env.MIRROR_REPLAY_RING_BLOCK_TIMEOUT = '250ms';
  try {
    assert.equal(parseArgs(['--destination', 'http://a'])!.ringBlockTimeoutMs, 250);
  } finally {
    delete process.env.MIRROR_REPLAY_RING_BLOCK_TIMEOUT;
  }
  // Workers share the ring in whole blocks: 4 MiB blocks, 3 workers, 24 MiB: 8 MiB = 2 blocks each.
  assert.equal(parseArgs(['--destination', 'http://a', '--ring-mb', '24', '--ring-block-size', '4MiB', '--workers', '3'])!.workers, 3);
});

test('policy flags reach the Config', () => {
  const c = parseArgs(['--destination', 'https://t.example?max-queue=10&timeout=2s', '--rate', '50', '--http-allow-method', 'GET', '--http-allow-method', 'HEAD', '--http-allow-url', '^/api/(a|b),c', '--http-remove-header', 'Cookie', '--http-set-header', 'X-A: 1, 2', '--mark-header', 'X-Mirror-Replay', '--tls-insecure'])!;
  assert.equal(c.rate, 50);
  assert.deepEqual(c.filters.allowMethods, ['GET', 'HEAD']);
  assert.deepEqual(c.filters.allowUrls, ['^/api/(a|b),c'], 'regexes are never split on commas');
  assert.deepEqual(c.rewrites.setHeaders, ['X-A: 1, 2']);
  assert.deepEqual(c.rewrites.removeHeaders, ['Cookie']);
  assert.equal(c.markHeader, 'X-Mirror-Replay');
  assert.equal(c.tlsInsecure, true);
});

test('environment variables, with flags winning', () => {
  process.env.MIRROR_REPLAY_DESTINATION = 'http://env-dest';
  process.env.MIRROR_REPLAY_FILTER_REQUEST_PORT = '8081';
  try {
    assert.equal(parseArgs([])!.port, 8081);
    assert.deepEqual(parseArgs([])!.destinations, ['http://env-dest']);
    assert.equal(parseArgs(['--filter-request-port', '90'])!.port, 90);
  } finally {
    delete process.env.MIRROR_REPLAY_DESTINATION;
    delete process.env.MIRROR_REPLAY_FILTER_REQUEST_PORT;
  }
});

test('every bad value gets a clear ConfigError naming the flag', () => {
  const bad: Array<[string[], RegExp]> = [
    [[], /--destination is required/],
    [['--destination', 'nope'], /not a URL/],
    [['--destination', 'http://x/path'], /only scheme, host and port/],
    [['--destination', 'http://x', '--filter-request-port', '70000'], /filter-request-port must be an integer from 1 to 65535/],
    [['--destination', 'http://x', '--filter-request-port', 'abc'], /filter-request-port/],
    [['--destination', 'http://x', '--percentage', '1001'], /percentage must be between 0 and 1000 \(above 100: copies\)/],
    [['--destination', 'http://x', '--percentage', '-1'], /percentage must be between 0 and 1000/],
    [['--destination', 'http://x', '--route-rate', '50:(unclosed'], /--route-rate "\(unclosed" is not a valid regular expression/],
    [['--destination', 'http://x', '--route-rate', '^/api/'], /--route-rate "\^\/api\/" must be 'N:regex'/],
    [['--destination', 'http://x', '--route-rate', '0:^/api/'], /--route-rate "0:\^\/api\/" must be 'N:regex'/],
    [['--destination', 'http://x', '--route-rate', '5:'], /the regex after ':' is empty/],
    [['--destination', 'http://x', '--route-rate', '5:^/a', '--route-rate', '9:^/a'], /the regex "\^\/a" is given twice/],
    [['--destination', 'http://x', '--copy-header', 'X Copy'], /--copy-header "X Copy" is not a header name/],
    [['--destination', 'http://x', '--copy-header', 'A', '--copy-header', 'B'], /--copy-header is given more than once/],
    [['--destination', 'http://x', '--percentage-by', 'cookie'], /percentage-by|Invalid values/],
    [['--destination', 'http://x', '--percentage-by', 'header'], /needs --percentage-by-header/],
    [['--destination', 'http://x', '--interface', 'a/b'], /not an interface name/],
    [['--destination', 'http://x', '--timeout', '5 minutes'], /--timeout must be a duration/],
    [['--destination', 'http://x', '--max-concurrency', '0'], /max-concurrency/],
    [['--destination', 'http://x', '--log-level', 'loud'], /log-level|Invalid values/],
    [['--destination', 'http://x', '--bogus'], /Unknown argument/],
    [['--destination', 'http://x', '--destination', 'http://x'], /given twice/],
    [['--destination', 'http://x', '--http-allow-url', '(unclosed'], /--http-allow-url .* not a valid regular expression/],
    [['--destination', 'http://x', '--http-disallow-header', 'nocolon'], /--http-disallow-header/],
    [['--destination', 'http://x', '--http-rewrite-url', 'nocolon'], /--http-rewrite-url/],
    [['--destination', 'http://x', '--rate', '-1'], /--rate/],
    [['--destination', 'http://x?max-queue=lots'], /max-queue must be a whole number/],
    [['--destination', 'http://x?retries=3'], /unknown setting "retries"/],
    [['--destination', 'ftp://x'], /must be http:\/\/ or https:\/\//],
    [['--destination', 'http://x', '--mark-header', 'bad name'], /--mark-header/],
    [['--destination', 'http://x', '--ring-block-size', '100KiB'], /--ring-block-size must be a power of two from 128KiB to 64MiB, got 100KiB/],
    [['--destination', 'http://x', '--ring-block-size', '64KiB'], /--ring-block-size must be a power of two/],
    [['--destination', 'http://x', '--ring-block-size', '128MiB'], /--ring-block-size must be a power of two/],
    [['--destination', 'http://x', '--ring-block-size', '200000'], /--ring-block-size must be a power of two.*200000 bytes/],
    [['--destination', 'http://x', '--ring-block-timeout', '0ms'], /--ring-block-timeout must be an integer from 1 to 10000/],
    [['--destination', 'http://x', '--ring-block-timeout', '11s'], /--ring-block-timeout must be an integer from 1 to 10000/],
    [['--destination', 'http://x', '--ring-block-timeout', 'soon'], /--ring-block-timeout must be a duration/],
    [['--destination', 'http://x', '--ring-block-timeout', '1s', '--ring-block-timeout', '2s'], /--ring-block-timeout is given more than once/],
    [['--destination', 'http://x', '--ring-mb', '3', '--ring-block-size', '2MiB'], /--ring-mb 3 must be a whole number of --ring-block-size 2048KiB blocks/],
    [['--destination', 'http://x', '--ring-mb', '16', '--ring-block-size', '4MiB', '--workers', '3'], /--ring-mb 16 is too small for --workers 3: each worker's ring needs at least 2 blocks of 4096KiB \(8 MiB\)/],
    [['--destination', 'http://x', '--ring-mb', '3', '--workers', '4'], /--ring-mb 3 is too small for --workers 4: each worker's ring needs at least 2 blocks of 128KiB \(1 MiB\)/],
  ];
  for (const [argv, re] of bad) {
    assert.throws(() => parseArgs(argv), (e: unknown) => e instanceof ConfigError && e.code === 'MR_CONFIG' && re.test(e.message), argv.join(' '));
  }
  assert.throws(() => parseDuration('x', '-1s'), ConfigError);
  assert.throws(() => parseBytes('x', '1 parsec'), ConfigError);
  assert.equal(parseBytes('x', '4MiB'), 4 * 1024 * 1024);
  assert.equal(parseDuration('x', '2m'), 120000);
});

test('the binary: --help lists the groups; a wrong flag exits 2 with a message', () => {
  const h = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
  assert.equal(h.status, 0);
  for (const g of ['Replay:', 'Sampling:', 'Capture:', 'Limits:', 'Operations:', '--destination', '--percentage-by-header', '--metrics-port']) assert.ok(h.stdout.includes(g), g);
  const b = spawnSync(process.execPath, [MAIN, '-destination', 'http://x', '-percentage', '3000'], { encoding: 'utf8' });
  assert.equal(b.status, 2);
  assert.match(b.stderr, /--percentage must be between 0 and 1000/);
});

test('the binary: version and config check', () => {
  const v = spawnSync(process.execPath, [MAIN, 'version'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^mirror-replay \d+\.\d+\.\d+/);
  const ok = spawnSync(process.execPath, [MAIN, 'config', 'check', '-destination', 'http://10.0.0.37', '--rate', '5'], { encoding: 'utf8' });
  assert.equal(ok.status, 0);
  const eff = JSON.parse(ok.stdout.slice(0, ok.stdout.lastIndexOf('}') + 1));
  assert.equal(eff.rate, 5);
  assert.equal(eff.port, 80);
  assert.deepEqual(eff.destinations, ['http://10.0.0.37']);
  const bad = spawnSync(process.execPath, [MAIN, 'config', 'check', '--destination', 'http://x', '--http-allow-url', '(('], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--http-allow-url/);
  assert.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
});

test('the binary: a missing interface fails with a clear capture error', { skip: process.getuid?.() !== 0 ? 'needs root to open AF_PACKET' : false }, () => {
  const r = spawnSync(process.execPath, [MAIN, '--destination', 'http://127.0.0.1:9', '--interface', 'mrnosuch0', '--metrics-port', '0', '--log-level', 'warn'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /mrnosuch0/);
  assert.ok(!r.stderr.includes('"level"'), 'a one-line message, not a JSON log with a stack');
});

test('amplification and per-route caps: flags, environment and config file', async () => {
  const c = parseArgs(['--destination', 'http://x', '--percentage', '250', '--copy-header', 'X-Mirror-Copy', '--route-rate', '50:^/api/(search|find),x', '--route-rate', '5.5:^/static/'])!;
  assert.equal(c.percentage, 250);
  assert.equal(c.copyHeader, 'X-Mirror-Copy');
  assert.deepEqual(c.routeRates, ['50:^/api/(search|find),x', '5.5:^/static/'], 'a regex is never split at commas');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mr-args-')), 'c.yaml');
  fs.writeFileSync(file, "destination: http://x\nroute-rate: ['10:^/a', '20:^/b']\ncopy-header: X-Copy\npercentage: 300\n");
  const f = parseArgs(['--config', file])!;
  assert.deepEqual([f.routeRates, f.copyHeader, f.percentage], [['10:^/a', '20:^/b'], 'X-Copy', 300]);
  process.env.MIRROR_REPLAY_ROUTE_RATE = '7:^/env/';
  try {
    assert.deepEqual(parseArgs(['--destination', 'http://x'])!.routeRates, ['7:^/env/']);
  } finally {
    delete process.env.MIRROR_REPLAY_ROUTE_RATE;
  }
  fs.rmSync(path.dirname(file), { recursive: true });
});
