/**
 * `mirror-replay doctor [--interface vxlan0]… [--encap-interface eth0 [--vni N]…]… [--destination URL]… [--filter-request-port 80] [--compare] [--seconds 3] [--config FILE]`:
 * one line per check, "ok", "warning" or "error", with the fix. Exit 0 unless a check is an error.
 */
import yargs from 'yargs';
import { runChecks, type Check } from '../doctor/checks.js';
import { loadConfigFile } from '../config/file.js';

function strings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
}

/** The first of flag, config file, default that gives any value, as a list. */
function firstGiven(...sources: unknown[]): string[] {
  for (const v of sources) if (strings(v).length) return strings(v);
  return [];
}

export function formatCheck(c: Check): string {
  return `${c.status.padEnd(7)} ${c.name}: ${c.message}${c.fix ? ` — fix: ${c.fix}` : ''}`;
}

export async function runDoctor(argv: string[]): Promise<number> {
  let a: Record<string, unknown>;
  let failure: string | null = null;
  try {
    a = yargs(argv)
      .scriptName('mirror-replay doctor')
      .usage('$0 [options]\n\nChecks the adapter: capability, VXLAN interfaces (or --encap-interface devices and their --vni), the VXLAN/GENEVE datagrams that arrive (VNIs, truncation), what the service port carries (TLS?), with --compare whether both directions arrive, and the destinations. Reads --interface/--destination like the daemon: flags, then MIRROR_REPLAY_* variables, then --config FILE.')
      .env('MIRROR_REPLAY')
      .option('interface', { type: 'string', array: true, describe: 'Capture interface to check (repeatable) [default: vxlan0]' })
      .option('encap-interface', { type: 'string', array: true, describe: 'Device that receives VXLAN/GENEVE itself, as the daemon\'s flag (repeatable; then no vxlan0 is expected)' })
      .option('vni', { type: 'string', array: true, describe: 'The VNIs the daemon keeps with --encap-interface (repeatable) [default: every VNI]' })
      .option('destination', { type: 'string', array: true, describe: 'Destination to test for reachability (repeatable)' })
      .option('filter-request-port', { type: 'number', alias: 'port', describe: "Production's service port inside the mirrored packets, as the daemon's flag [default: 80]" })
      .option('compare', { type: 'boolean', describe: 'The daemon compares answers (--compare): check that both directions of each connection arrive here' })
      .option('seconds', { type: 'number', default: 3, describe: 'How long to sample VXLAN datagrams' })
      .option('config', { type: 'string', describe: "The daemon's YAML or JSON config file" })
      .help()
      .exitProcess(false)
      .fail((msg, e) => {
        failure = e?.message ?? msg;
      })
      .parseSync() as Record<string, unknown>;
    if (failure) throw new Error(failure);
    if (a.help) return 0;
    const file = typeof a.config === 'string' ? loadConfigFile(a.config) : {};
    const seconds = Number(a.seconds);
    if (!(seconds > 0 && seconds <= 600)) throw new Error(`--seconds must be between 0 and 600, got ${String(a.seconds)}`);
    const encapInterfaces = firstGiven(a['encap-interface'], file['encap-interface']);
    const vnis = firstGiven(a.vni, file.vni).map((v) => {
      const n = Number(v);
      if (!(Number.isInteger(n) && n >= 0 && n < 2 ** 24)) throw new Error(`--vni must be a VNI (0 to 16777215), got ${v}`);
      return n;
    });
    // As the daemon: --encap-interface alone means no vxlan0 at all.
    const interfaces = firstGiven(a.interface, file.interface, encapInterfaces.length ? [] : ['vxlan0']);
    const destinations = strings(a.destination).length ? strings(a.destination) : strings(file.destination);
    const given = a['filter-request-port'] ?? file['filter-request-port'] ?? 80;
    const port = Number(given);
    if (!(Number.isInteger(port) && port > 0 && port < 65536)) throw new Error(`--filter-request-port must be a TCP port, got ${String(given)}`);
    // As the daemon: a diff log or a baseline implies comparing.
    const compare = Boolean(a.compare ?? (file.compare || file['diff-log'] || file['baseline-destination']));
    const checks = await runChecks({ interfaces, destinations, seconds, port, compare, encapInterfaces, vnis });
    for (const c of checks) process.stdout.write(`${formatCheck(c)}\n`);
    const errors = checks.filter((c) => c.status === 'error').length;
    const warnings = checks.filter((c) => c.status === 'warning').length;
    process.stdout.write(`${errors} error(s), ${warnings} warning(s)\n`);
    return errors ? 1 : 0;
  } catch (e) {
    process.stderr.write(`mirror-replay doctor: ${(e as Error).message}\n`);
    return 2;
  }
}
