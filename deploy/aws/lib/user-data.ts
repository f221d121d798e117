// Boot scripts. The adapter's takes the VNI as the same CloudFormation value the mirror session
// uses, so the two cannot disagree (the blog's most important rule).
import { Token } from 'aws-cdk-lib';
import { UserData } from 'aws-cdk-lib/aws-ec2';
import { HEALTH_CHECK_PORT, METRICS_PORT, VXLAN_INTERFACE } from './contract.js';

export interface AdapterBootOptions {
  /** The mirror session's VNI (a token: the stack's Vni parameter). */
  readonly vni: string;
  /** npm install spec of the release: `mirror-replay@0.1.0` or a tarball URL. */
  readonly packageSpec: string;
  /** Test environment base URL, e.g. `http://10.0.0.37` (may hold tokens). */
  readonly destination: string;
  /** Service port whose inbound requests are mirrored and replayed. */
  readonly servicePort: number;
  /** Open the NLB health-check listener (scale-out); the single adapter has no NLB to answer. */
  readonly healthCheck: boolean;
}

/**
 * Installs Node.js 20 and the release with npm (the ioctl addon builds with g++/make), writes
 * /etc/mirror-replay/config.yaml, then runs the package's scripts/install-systemd.sh, which
 * writes vxlan-vxlan0.env with the VNI, installs and enables mirror-replay-vxlan@vxlan0 and
 * mirror-replay; then starts them.
 */
export function adapterUserData(o: AdapterBootOptions): UserData {
  if (!Token.isUnresolved(o.vni) && !/^\d+$/.test(o.vni)) throw new Error(`vni must be a number or a token, got ${o.vni}`);
  const ud = UserData.forLinux();
  ud.addCommands(
    'set -euxo pipefail',
    'export HOME=/root',
    'dnf install -y nodejs20 nodejs20-npm gcc-c++ make python3 iproute',
    `npm-20 install -g ${quoteSpec(o.packageSpec)}`,
    'prefix="$(npm-20 root -g)/mirror-replay"',
    'install -d -m 0755 /etc/mirror-replay',
    // Written before install-systemd.sh, which keeps an existing config.yaml.
    "cat >/etc/mirror-replay/config.yaml <<'MIRROR_REPLAY_CONFIG'",
    '# Written by the deploy/aws stack at first boot.',
    'destination:',
    `  - ${o.destination}`,
    'interface:',
    `  - ${VXLAN_INTERFACE}`,
    `filter-request-port: ${o.servicePort}`,
    `metrics-port: ${METRICS_PORT}`,
    `health-check-port: ${o.healthCheck ? HEALTH_CHECK_PORT : 0}`,
    'MIRROR_REPLAY_CONFIG',
    `"$prefix/scripts/install-systemd.sh" --prefix "$prefix" --node /usr/bin/node-20 --name ${VXLAN_INTERFACE} --vni ${o.vni}`,
    `systemctl start mirror-replay-vxlan@${VXLAN_INTERFACE}.service mirror-replay.service`,
  );
  return ud;
}

function quoteSpec(spec: string): string {
  // A token resolves at deploy time to the parameter's value; the parameter's pattern keeps it shell-safe.
  return Token.isUnresolved(spec) ? spec : `'${spec.replaceAll("'", `'\\''`)}'`;
}

/** The blog's stand-in for production and the test environment: `python3 -m http.server` as a unit. */
export function demoHttpUserData(port: number, role: 'production' | 'test'): UserData {
  const ud = UserData.forLinux();
  ud.addCommands(
    'set -euxo pipefail',
    'install -d -m 0755 /var/www/demo',
    `echo ${role} >/var/www/demo/index.html`,
    "cat >/etc/systemd/system/demo-http.service <<'UNIT'",
    '[Unit]',
    `Description=Demo HTTP service (${role}); every request is logged to the journal`,
    'After=network-online.target',
    '[Service]',
    `ExecStart=/usr/bin/python3 -m http.server ${port} --directory /var/www/demo`,
    'Restart=always',
    'DynamicUser=yes',
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    '[Install]',
    'WantedBy=multi-user.target',
    'UNIT',
    'systemctl daemon-reload',
    'systemctl enable --now demo-http.service',
  );
  return ud;
}

