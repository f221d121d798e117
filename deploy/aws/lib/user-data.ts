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
  /** Open the load balancer's health-check listener (scale-out); the single adapter has none to answer. */
  readonly healthCheck: boolean;
  /** `compare: true`: shadow testing, which needs the filter's egress rule (production's answers). */
  readonly compare: boolean;
  /**
   * How mirrored traffic reaches the daemon. `vxlan`: the kernel decapsulates on vxlan0 (an ENI or
   * NLB target). `encap`: the daemon reads the datagrams on the ENI itself and decapsulates them
   * (`--encap-interface`), as it must behind a Gateway Load Balancer, whose GENEVE has no kernel
   * device here.
   */
  readonly capture: 'vxlan' | 'encap';
}

/**
 * Installs Node.js 20 and the release with npm (the ioctl addon builds with g++/make), writes
 * /etc/mirror-replay/config.yaml, then runs the package's scripts/install-systemd.sh. With
 * `capture: 'vxlan'` that writes vxlan-vxlan0.env with the VNI and enables
 * mirror-replay-vxlan@vxlan0 and mirror-replay; with `encap` only mirror-replay runs.
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
    ...(o.capture === 'vxlan' ? ['interface:', `  - ${VXLAN_INTERFACE}`] : []),
    `filter-request-port: ${o.servicePort}`,
    `metrics-port: ${METRICS_PORT}`,
    `health-check-port: ${o.healthCheck ? HEALTH_CHECK_PORT : 0}`,
    ...(o.compare ? ['compare: true'] : []),
    'MIRROR_REPLAY_CONFIG',
    ...(o.capture === 'vxlan' ? vxlanUnits(o.vni) : encapUnits(o.vni)),
  );
  return ud;
}

/** vxlan0 from mirror-replay-vxlan@vxlan0 (with the session's VNI), then the daemon on it. */
function vxlanUnits(vni: string): string[] {
  return [
    `"$prefix/scripts/install-systemd.sh" --prefix "$prefix" --node /usr/bin/node-20 --name ${VXLAN_INTERFACE} --vni ${vni}`,
    `systemctl start mirror-replay-vxlan@${VXLAN_INTERFACE}.service mirror-replay.service`,
  ];
}

/**
 * No vxlan0: the daemon reads the ENI that carries the default route (ens5 on Nitro) and keeps
 * only the session's VNI. Only mirror-replay.service is enabled.
 */
function encapUnits(vni: string): string[] {
  return [
    `dev="$(ip -o -4 route show default | awk '{print $5; exit}')"`,
    'test -n "$dev"',
    `printf 'encap-interface:\\n  - %s\\nvni:\\n  - %s\\n' "$dev" ${vni} >>/etc/mirror-replay/config.yaml`,
    `"$prefix/scripts/install-systemd.sh" --prefix "$prefix" --node /usr/bin/node-20 --no-enable`,
    'systemctl daemon-reload',
    'systemctl enable --now mirror-replay.service',
  ];
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

