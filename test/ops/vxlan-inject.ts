/**
 * Lab helper, run inside a namespace: sends `--count` HTTP requests (each its own connection
 * from 10.99.0.1) as VXLAN datagrams with `--vni` to `--to HOST` UDP 4789, the way a second
 * mirror session would. Prints "sent N" and exits.
 *   node vxlan-inject.js --vni 2 --to 10.213.2.2 --server 10.213.1.2 --count 20 --prefix /vni2
 */
import dgram from 'node:dgram';
import { httpConnectionFrames } from '../fixtures/vxlan.js';
import { vxlanPayload } from '../fixtures/vxlan.js';

function arg(name: string, dflt?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

const vni = Number(arg('vni'));
const to = arg('to');
const server = arg('server');
const count = Math.min(1000, Number(arg('count', '10')));
const prefix = arg('prefix', `/vni${vni}`);
const sock = dgram.createSocket('udp4');
let sent = 0;
for (let i = 0; i < count; i++) {
  for (const f of httpConnectionFrames('10.99.0.1', 20000 + i, server, `${prefix}/${i}`)) {
    await new Promise<void>((res, rej) => sock.send(vxlanPayload(vni, f), 4789, to, (e) => (e ? rej(e) : res())));
  }
  sent++;
  await new Promise((r) => setTimeout(r, 5));
}
sock.close();
process.stdout.write(`sent ${sent}\n`);
