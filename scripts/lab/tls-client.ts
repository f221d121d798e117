/**
 * A real HTTPS client (node:https over OpenSSL) for the lab's TLS tests: `--requests N` GETs to
 * `--url`, one every `--interval-ms`, on one keep-alive connection (`--keep-alive`) or a new
 * connection each; stops after `--max-seconds` whatever the count. Prints {"ok":n,"failed":m}.
 * The production certificate is self-signed, so it is not verified.
 */
import https from 'node:https';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const url = opt('url', 'https://10.213.1.2/');
const requests = Number(opt('requests', '10'));
const intervalMs = Number(opt('interval-ms', '0'));
const deadline = Date.now() + Number(opt('max-seconds', '30')) * 1000;
const agent = new https.Agent({ keepAlive: args.includes('--keep-alive'), maxSockets: 1, rejectUnauthorized: false });

function get(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(`${url}?i=${i}`, { agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

let ok = 0;
let failed = 0;
for (let i = 0; i < requests && Date.now() < deadline; i++) {
  if (await get(i)) ok++;
  else failed++;
  if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
}
agent.destroy();
process.stdout.write(`${JSON.stringify({ ok, failed })}\n`);
