import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../../deploy/aws/lib/app.js';
import { ACKNOWLEDGED, FLEET_ACKNOWLEDGED, acknowledgeFindings } from '../../deploy/aws/lib/nag.js';
import { MirrorScaleOutStack } from '../../deploy/aws/lib/scale-out-stack.js';
import { MirrorTopologyStack } from '../../deploy/aws/lib/topology-stack.js';

// One offline synthesis for the whole file: no credentials, no lookups, no network.
const { app, topology, scaleOut } = buildApp({ outdir: undefined });
const topo = Template.fromStack(topology);
const scale = Template.fromStack(scaleOut);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const resources = (t: Template, type: string): Array<[string, Json]> => Object.entries(t.findResources(type));
const only = (t: Template, type: string): [string, Json] => {
  const r = resources(t, type);
  assert.equal(r.length, 1, `expected one ${type}, found ${r.length}`);
  return r[0];
};

/** The fleet Lambda: the one function whose handler is fleet-sessions.handler. */
function fleetFunction(t: Template): [string, Json] {
  const fns = resources(t, 'AWS::Lambda::Function').filter(([, f]) => f.Properties.Handler === 'fleet-sessions.handler');
  assert.equal(fns.length, 1, 'one fleet-sessions function');
  return fns[0];
}
const fleetEnv = (t: Template): Json => fleetFunction(t)[1].Properties.Environment.Variables;

/** The adapters' boot script in the scale-out stack (the launch template's user data). */
const launchScript = (t: Template): string => script(only(t, 'AWS::EC2::LaunchTemplate')[1].Properties.LaunchTemplateData.UserData);

/** A user-data body as text, each CloudFormation reference shown as ${Ref} or ${Res.Attr}. */
function script(userData: Json): string {
  const body = userData['Fn::Base64'];
  if (typeof body === 'string') return body;
  return (body['Fn::Join'][1] as unknown[])
    .map((p) => (typeof p === 'string' ? p : 'Ref' in (p as Json) ? `\${${(p as Json).Ref}}` : `\${${((p as Json)['Fn::GetAtt'] as string[]).join('.')}}`))
    .join('');
}

/** The user data of the instance whose primary ENI is `eniLogicalId`. */
function instanceScriptOnEni(t: Template, eniLogicalId: string): string {
  const hits = resources(t, 'AWS::EC2::Instance').filter(([, r]) => r.Properties.NetworkInterfaces?.[0]?.NetworkInterfaceId?.Ref === eniLogicalId);
  assert.equal(hits.length, 1, `no instance on ${eniLogicalId}`);
  return script(hits[0][1].Properties.UserData);
}

/** Every NACL entry, keyed by the tier (subnet group) its NACL is associated with, as readable lines. */
function aclEntries(t: Template): Record<string, string[]> {
  const subnets = t.findResources('AWS::EC2::Subnet');
  const tierOf = (subnetId: string) => (subnets[subnetId].Properties.Tags as Array<{ Key: string; Value: string }>).find((x) => x.Key === 'aws-cdk:subnet-name')!.Value;
  const aclTier = new Map<string, Set<string>>();
  const associated = new Set<string>();
  for (const [, a] of resources(t, 'AWS::EC2::SubnetNetworkAclAssociation')) {
    const acl = a.Properties.NetworkAclId.Ref as string;
    const subnet = a.Properties.SubnetId.Ref as string;
    associated.add(subnet);
    aclTier.set(acl, (aclTier.get(acl) ?? new Set()).add(tierOf(subnet)));
  }
  assert.deepEqual([...associated].sort(), Object.keys(subnets).sort(), 'a subnet is left on the default NACL');
  const out: Record<string, string[]> = {};
  for (const [, e] of resources(t, 'AWS::EC2::NetworkAclEntry')) {
    const p = e.Properties;
    assert.equal(p.RuleAction, 'allow');
    const tiers = [...aclTier.get(p.NetworkAclId.Ref)!];
    assert.equal(tiers.length, 1, 'one NACL per tier');
    const proto = ({ 6: 'tcp', 17: 'udp' } as Record<number, string>)[p.Protocol];
    assert.ok(proto, `protocol ${p.Protocol} opened`);
    const ports = p.PortRange.From === p.PortRange.To ? `${p.PortRange.From}` : `${p.PortRange.From}-${p.PortRange.To}`;
    const cidr = typeof p.CidrBlock === 'string' ? p.CidrBlock : `\${${p.CidrBlock.Ref}}`;
    (out[tiers[0]] ??= []).push(`${p.Egress ? 'out' : 'in'} ${proto} ${ports} ${cidr}`);
  }
  for (const k of Object.keys(out)) out[k].sort();
  return out;
}

function expectAcls(got: Record<string, string[]>, want: Record<string, string[]>) {
  for (const k of Object.keys(want)) want[k].sort();
  assert.deepEqual(got, want);
}

describe('topology stack (the blog, as code)', () => {
  test('the blog\'s three /28 subnets in one AZ, in private address space', () => {
    const cidrs = resources(topo, 'AWS::EC2::Subnet').map(([, s]) => s.Properties.CidrBlock).sort();
    assert.deepEqual(cidrs, ['10.0.0.0/28', '10.0.0.16/28', '10.0.0.32/28']);
    topo.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '10.0.0.0/24' });
    assert.equal(resources(topo, 'AWS::EC2::Instance').length, 3);
  });

  test('the session\'s VNI is the adapter\'s vxlan0 VNI: both are the Vni parameter', () => {
    const [, session] = only(topo, 'AWS::EC2::TrafficMirrorSession');
    assert.deepEqual(session.Properties.VirtualNetworkId, { Ref: 'Vni' });
    const [targetId, target] = only(topo, 'AWS::EC2::TrafficMirrorTarget');
    assert.deepEqual(session.Properties.TrafficMirrorTargetId, { Ref: targetId });
    // The session sends to the ENI of the instance whose boot script configures vxlan0 with that VNI.
    const adapter = instanceScriptOnEni(topo, target.Properties.NetworkInterfaceId.Ref);
    assert.match(adapter, /install-systemd\.sh" .*--name vxlan0 --vni \$\{Vni\}\n/);
    assert.doesNotMatch(adapter.replace('--vni ${Vni}', ''), /vni|VNI=/i, 'a second, literal VNI in the boot script');
    // And it mirrors the production stand-in's ENI, the one with the public address.
    const source = session.Properties.NetworkInterfaceId.Ref as string;
    topo.hasResourceProperties('AWS::EC2::EIPAssociation', { NetworkInterfaceId: { Ref: source } });
    assert.match(instanceScriptOnEni(topo, source), /echo production/);
    topo.hasParameter('Vni', { Type: 'Number', MinValue: 1, MaxValue: 16777215 });
  });

  test('the adapter installs the release, writes the config the units read, and replays to the target', () => {
    const [, target] = only(topo, 'AWS::EC2::TrafficMirrorTarget');
    const s = instanceScriptOnEni(topo, target.Properties.NetworkInterfaceId.Ref);
    assert.match(s, /npm-20 install -g \$\{MirrorReplayPackage\}\n/);
    assert.match(s, /destination:\n {2}- http:\/\/\$\{TargetEni[0-9A-F]+\.PrimaryPrivateIpAddress\}\n/);
    assert.match(s, /interface:\n {2}- vxlan0\nfilter-request-port: 80\n/);
    assert.match(s, /systemctl start mirror-replay-vxlan@vxlan0\.service mirror-replay\.service$/);
    // The config is written before install-systemd.sh, which keeps an existing config.yaml.
    assert.ok(s.indexOf('/etc/mirror-replay/config.yaml') < s.indexOf('install-systemd.sh'));
    const bash = spawnSync('bash', ['-n'], { input: s.replaceAll(/\$\{[A-Za-z0-9.]+\}/g, '1'), encoding: 'utf8' });
    assert.equal(bash.status, 0, bash.stderr);
  });

  test('the filter keeps inbound TCP to the service port, and only that', () => {
    const [filterId] = only(topo, 'AWS::EC2::TrafficMirrorFilter');
    const [, rule] = only(topo, 'AWS::EC2::TrafficMirrorFilterRule');
    assert.deepEqual(rule.Properties.TrafficMirrorFilterId, { Ref: filterId });
    assert.equal(rule.Properties.TrafficDirection, 'ingress');
    assert.equal(rule.Properties.RuleAction, 'accept');
    assert.equal(rule.Properties.Protocol, 6);
    assert.deepEqual(rule.Properties.DestinationPortRange, { FromPort: 80, ToPort: 80 });
    assert.equal(rule.Properties.SourcePortRange, undefined);
    const [, session] = only(topo, 'AWS::EC2::TrafficMirrorSession');
    assert.deepEqual(session.Properties.TrafficMirrorFilterId, { Ref: filterId });
    assert.equal(session.Properties.PacketLength, undefined, 'mirrored packets must not be cut short');
  });

  test('another service port moves the filter, the NACLs and the daemon\'s port together', () => {
    const t = Template.fromStack(new MirrorTopologyStack(new App(), 'Port8080', { servicePort: 8080 }));
    t.hasResourceProperties('AWS::EC2::TrafficMirrorFilterRule', { DestinationPortRange: { FromPort: 8080, ToPort: 8080 } });
    const acls = aclEntries(t);
    assert.ok(acls.Source.includes('in tcp 8080 0.0.0.0/0'));
    assert.ok(acls.Target.includes('in tcp 8080 10.0.0.16/28'));
    assert.ok(!JSON.stringify(acls).includes(' 80 '));
    const [, target] = only(t, 'AWS::EC2::TrafficMirrorTarget');
    const s = instanceScriptOnEni(t, target.Properties.NetworkInterfaceId.Ref);
    assert.match(s, /PrimaryPrivateIpAddress\}:8080\n/);
    assert.match(s, /filter-request-port: 8080\n/);
  });

  test('the NACLs open exactly what the topology needs', () => {
    expectAcls(aclEntries(topo), {
      Source: [
        'in tcp 22 ${AdminCidr}', // SSH to the jump host
        'in tcp 80 0.0.0.0/0', // production
        'in tcp 443 10.0.0.0/24', // private subnets to the NAT gateway
        'in tcp 1024-65535 0.0.0.0/0', // return traffic (stateless NACL)
        'out tcp 22 10.0.0.0/24', // jump on to the private instances
        'out tcp 443 0.0.0.0/0', // NAT gateway and dnf out
        'out tcp 1024-65535 0.0.0.0/0', // replies to clients and NAT replies inward
      ],
      Adapter: [
        'in udp 4789 10.0.0.0/24', // mirrored VXLAN
        'in tcp 22 10.0.0.0/28', // SSH from the jump host
        'in tcp 1024-65535 0.0.0.0/0', // answers to replays, dnf/npm
        'out tcp 80 10.0.0.32/28', // the replays
        'out tcp 443 0.0.0.0/0', // dnf/npm through the NAT gateway
        'out tcp 1024-65535 10.0.0.0/24', // SSH replies
      ],
      Target: [
        'in tcp 80 10.0.0.16/28', // the replays
        'in tcp 22 10.0.0.0/28',
        'in tcp 1024-65535 0.0.0.0/0',
        'out tcp 1024-65535 10.0.0.0/24', // answers to the replays
        'out tcp 443 0.0.0.0/0',
      ],
    });
  });

  test('security groups: VXLAN into the adapter, the service port into the target from the adapter only', () => {
    const groups = topo.findResources('AWS::EC2::SecurityGroup');
    const idOf = (desc: RegExp) => Object.keys(groups).find((k) => desc.test(groups[k].Properties.GroupDescription))!;
    const adapterSg = idOf(/^mirror-replay adapter/);
    const targetSg = idOf(/^test environment/);
    const inline = groups[adapterSg].Properties.SecurityGroupIngress as Json[];
    assert.ok(inline.some((r) => r.IpProtocol === 'udp' && r.FromPort === 4789 && r.ToPort === 4789 && r.CidrIp === '10.0.0.0/24'));
    topo.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [targetSg, 'GroupId'] }, IpProtocol: 'tcp', FromPort: 80, ToPort: 80, SourceSecurityGroupId: { 'Fn::GetAtt': [adapterSg, 'GroupId'] },
    });
  });
});

describe('scale-out stack (NLB and an Auto Scaling group of adapters)', () => {
  test('the NLB listens on UDP 4789 and is the mirror target the fleet sessions use', () => {
    const [nlbId, nlb] = only(scale, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    assert.equal(nlb.Properties.Type, 'network');
    assert.equal(nlb.Properties.Scheme, 'internal');
    const [, listener] = only(scale, 'AWS::ElasticLoadBalancingV2::Listener');
    assert.deepEqual([listener.Properties.Protocol, listener.Properties.Port], ['UDP', 4789]);
    const [targetId, target] = only(scale, 'AWS::EC2::TrafficMirrorTarget');
    assert.deepEqual(target.Properties.NetworkLoadBalancerArn, { Ref: nlbId });
    // No fixed session: the fleet construct makes one per ENI with this target, the filter and the Vni parameter.
    assert.equal(resources(scale, 'AWS::EC2::TrafficMirrorSession').length, 0);
    const env = fleetEnv(scale);
    assert.deepEqual(env.TARGET_ID, { Ref: targetId });
    assert.deepEqual(env.FILTER_ID, { Ref: only(scale, 'AWS::EC2::TrafficMirrorFilter')[0] });
    assert.deepEqual(env.VNI, { Ref: 'Vni' });
  });

  test('the UDP target group keeps each mirror source on one adapter (source-IP stickiness)', () => {
    const [, tg] = only(scale, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    const attrs = Object.fromEntries((tg.Properties.TargetGroupAttributes as Json[]).map((a) => [a.Key, a.Value]));
    assert.equal(attrs['stickiness.enabled'], 'true');
    assert.equal(attrs['stickiness.type'], 'source_ip');
  });

  test('the health check is TCP on the daemon\'s --health-check-port, which the adapters open', () => {
    const [tgId, tg] = only(scale, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    assert.deepEqual([tg.Properties.Protocol, tg.Properties.Port], ['UDP', 4789]);
    assert.equal(tg.Properties.HealthCheckProtocol, 'TCP');
    assert.equal(tg.Properties.HealthCheckPort, '8079');
    const [, asg] = only(scale, 'AWS::AutoScaling::AutoScalingGroup');
    assert.deepEqual(asg.Properties.TargetGroupARNs, [{ Ref: tgId }]);
    assert.equal(asg.Properties.HealthCheckType, 'ELB');
    // The adapters' daemon listens there, with the session's VNI on vxlan0.
    const [ltId, lt] = only(scale, 'AWS::EC2::LaunchTemplate');
    assert.deepEqual(asg.Properties.LaunchTemplate.LaunchTemplateId, { Ref: ltId });
    const s = script(lt.Properties.LaunchTemplateData.UserData);
    assert.match(s, /\nhealth-check-port: 8079\n/);
    assert.match(s, /--vni \$\{Vni\}\n/);
    assert.ok(aclEntries(scale).Adapter.includes('in tcp 8079 10.1.0.0/22'));
    const sgs = scale.findResources('AWS::EC2::SecurityGroup');
    const adapterSg = Object.values(sgs).find((g) => /^mirror-replay adapters/.test(g.Properties.GroupDescription))!;
    assert.ok((adapterSg.Properties.SecurityGroupIngress as Json[]).some((r) => r.IpProtocol === 'tcp' && r.FromPort === 8079 && r.CidrIp === '10.1.0.0/22'));
  });

  test('the NACLs open exactly what the topology needs, in both AZs', () => {
    expectAcls(aclEntries(scale), {
      Source: [
        'in tcp 22 ${AdminCidr}', 'in tcp 80 0.0.0.0/0', 'in tcp 443 10.1.0.0/22', 'in tcp 1024-65535 0.0.0.0/0',
        'out tcp 22 10.1.0.0/22', 'out tcp 443 0.0.0.0/0', 'out tcp 1024-65535 0.0.0.0/0',
      ],
      Adapter: [
        'in udp 4789 10.1.0.0/22', 'in tcp 22 10.1.0.0/26', 'in tcp 22 10.1.0.64/26', 'in tcp 8079 10.1.0.0/22', 'in tcp 1024-65535 0.0.0.0/0',
        'out tcp 80 10.1.1.0/26', 'out tcp 80 10.1.1.64/26', 'out tcp 443 0.0.0.0/0', 'out tcp 1024-65535 10.1.0.0/22',
      ],
      Target: [
        'in tcp 80 10.1.0.128/26', 'in tcp 80 10.1.0.192/26', 'in tcp 22 10.1.0.0/26', 'in tcp 22 10.1.0.64/26', 'in tcp 1024-65535 0.0.0.0/0',
        'out tcp 1024-65535 10.1.0.0/22', 'out tcp 443 0.0.0.0/0',
      ],
    });
  });
});

describe('cdk-nag (AwsSolutions) and hardening', () => {
  for (const [name, stack] of [['topology', topology], ['scale-out', scaleOut]] as const) {
    test(`${name}: no unacknowledged AwsSolutions finding`, () => {
      const report = new AwsSolutionsChecks(app).validateScope(stack);
      const open = report.violations.map((v) => `${v.ruleName} (${v.severity}) at ${v.violatingResources.map((r) => r.constructPath).join(', ')}: ${v.description}`);
      assert.deepEqual(open, []);
      assert.equal(report.success, true);
    });
  }

  test('every acknowledgement says why', () => {
    for (const a of [...ACKNOWLEDGED, ...FLEET_ACKNOWLEDGED]) assert.ok(a.reason.length > 40, `${a.id}: reason too short`);
  });

  test('the app synthesizes offline, with cdk-nag as a validation plugin', () => {
    const out = app.synth();
    assert.deepEqual(out.stacks.map((s) => s.stackName).sort(), ['MirrorReplayScaleOut', 'MirrorReplayTopology']);
  });

  test('every volume is encrypted, and every instance requires IMDSv2', () => {
    for (const t of [topo, scale]) {
      for (const [, i] of resources(t, 'AWS::EC2::Instance')) {
        assert.ok(i.Properties.BlockDeviceMappings.every((b: Json) => b.Ebs.Encrypted === true));
        assert.equal(i.Properties.MetadataOptions.HttpTokens, 'required');
      }
    }
    const [, lt] = only(scale, 'AWS::EC2::LaunchTemplate');
    assert.ok(lt.Properties.LaunchTemplateData.BlockDeviceMappings.every((b: Json) => b.Ebs.Encrypted === true));
    assert.equal(lt.Properties.LaunchTemplateData.MetadataOptions.HttpTokens, 'required');
  });
});

const bashOk = (s: string) => {
  const r = spawnSync('bash', ['-n'], { input: s.replaceAll(/\$\{[A-Za-z0-9.]+\}/g, '1'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
};

/** The filter's rules as readable lines: `ingress dst 80`, `egress src 80`. */
function filterRules(t: Template): string[] {
  const [filterId] = only(t, 'AWS::EC2::TrafficMirrorFilter');
  return resources(t, 'AWS::EC2::TrafficMirrorFilterRule').map(([, r]) => {
    const p = r.Properties;
    assert.deepEqual(p.TrafficMirrorFilterId, { Ref: filterId });
    assert.deepEqual([p.RuleAction, p.Protocol], ['accept', 6]);
    const ports = (x: Json | undefined) => (x ? `${x.FromPort}-${x.ToPort}` : 'any');
    return `${p.TrafficDirection} src ${ports(p.SourcePortRange)} dst ${ports(p.DestinationPortRange)}`;
  }).sort();
}

describe('compare=true: shadow testing in both stacks', () => {
  const topoCmp = Template.fromStack(new MirrorTopologyStack(new App(), 'TopoCompare', { compare: true }));
  const scaleCmp = Template.fromStack(new MirrorScaleOutStack(new App(), 'ScaleCompare', { compare: true }));

  test('off (the default), the filter mirrors requests only and the adapters do not compare', () => {
    for (const t of [topo, scale]) assert.deepEqual(filterRules(t), ['ingress src any dst 80-80']);
    assert.doesNotMatch(launchScript(scale), /compare/);
    const [, target] = only(topo, 'AWS::EC2::TrafficMirrorTarget');
    assert.doesNotMatch(instanceScriptOnEni(topo, target.Properties.NetworkInterfaceId.Ref), /compare/);
  });

  test('the filter gains the egress rule from the service port: production\'s answers', () => {
    for (const t of [topoCmp, scaleCmp]) assert.deepEqual(filterRules(t), ['egress src 80-80 dst any', 'ingress src any dst 80-80']);
  });

  test('the adapters\' config turns comparing on, in the topology (end to end) and the scale-out', () => {
    const [, target] = only(topoCmp, 'AWS::EC2::TrafficMirrorTarget');
    const single = instanceScriptOnEni(topoCmp, target.Properties.NetworkInterfaceId.Ref);
    for (const s of [single, launchScript(scaleCmp)]) {
      assert.match(s, /\ncompare: true\nMIRROR_REPLAY_CONFIG\n/);
      bashOk(s);
    }
    // The same session feeds replay and comparison: the topology's session uses that filter.
    const [filterId] = only(topoCmp, 'AWS::EC2::TrafficMirrorFilter');
    assert.deepEqual(only(topoCmp, 'AWS::EC2::TrafficMirrorSession')[1].Properties.TrafficMirrorFilterId, { Ref: filterId });
  });
});

describe('target=gwlb: a Gateway Load Balancer endpoint as the mirror target', () => {
  const gw = new MirrorScaleOutStack(new App(), 'ScaleGwlb', { target: 'gwlb' });
  acknowledgeFindings(gw);
  const t = Template.fromStack(gw);

  test('GWLB, endpoint service and endpoint; the mirror target names the endpoint', () => {
    const [lbId, lb] = only(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    assert.equal(lb.Properties.Type, 'gateway');
    assert.equal(lb.Properties.Subnets.length, 2, 'both adapter subnets');
    const [, svc] = only(t, 'AWS::EC2::VPCEndpointService');
    assert.deepEqual(svc.Properties.GatewayLoadBalancerArns, [{ Ref: lbId }]);
    const [endpointId, endpoint] = only(t, 'AWS::EC2::VPCEndpoint');
    assert.equal(endpoint.Properties.VpcEndpointType, 'GatewayLoadBalancer');
    assert.match(JSON.stringify(endpoint.Properties.ServiceName), /com\.amazonaws\.vpce\..*AWS::Region.*\{"Ref":"GatewayService[0-9A-F]+"\}/);
    const [mtId, mt] = only(t, 'AWS::EC2::TrafficMirrorTarget');
    assert.deepEqual(mt.Properties, { Description: mt.Properties.Description, GatewayLoadBalancerEndpointId: { Ref: endpointId } });
    assert.deepEqual(fleetEnv(t).TARGET_ID, { Ref: mtId });
  });

  test('GENEVE 6081 target group: health check on the daemon\'s port, 2-tuple stickiness, the adapters registered', () => {
    const [tgId, tg] = only(t, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    assert.deepEqual([tg.Properties.Protocol, tg.Properties.Port, tg.Properties.TargetType], ['GENEVE', 6081, 'instance']);
    assert.deepEqual([tg.Properties.HealthCheckProtocol, tg.Properties.HealthCheckPort], ['TCP', '8079']);
    const attrs = Object.fromEntries((tg.Properties.TargetGroupAttributes as Json[]).map((a) => [a.Key, a.Value]));
    assert.equal(attrs['stickiness.enabled'], 'true');
    assert.equal(attrs['stickiness.type'], 'source_ip_dest_ip');
    const [, listener] = only(t, 'AWS::ElasticLoadBalancingV2::Listener');
    assert.deepEqual(listener.Properties.DefaultActions, [{ Type: 'forward', TargetGroupArn: { Ref: tgId } }]);
    assert.equal(listener.Properties.Port, undefined, 'a GWLB listener has no port');
    const [, asg] = only(t, 'AWS::AutoScaling::AutoScalingGroup');
    assert.deepEqual(asg.Properties.TargetGroupARNs, [{ Ref: tgId }]);
    assert.equal(asg.Properties.HealthCheckType, 'ELB');
  });

  test('the adapters read GENEVE on their ENI with --encap-interface: no vxlan0, the session\'s VNI only', () => {
    const s = launchScript(t);
    assert.doesNotMatch(s, /vxlan0/);
    assert.match(s, /printf 'encap-interface:\\n {2}- %s\\nvni:\\n {2}- %s\\n' "\$dev" \$\{Vni\} >>\/etc\/mirror-replay\/config\.yaml/);
    assert.match(s, /\nhealth-check-port: 8079\n/);
    assert.match(s, /install-systemd\.sh" .*--no-enable\n/);
    assert.match(s, /systemctl enable --now mirror-replay\.service$/);
    bashOk(s);
  });

  test('GENEVE reaches the adapters through the security group and the NACL; VXLAN reaches the endpoint', () => {
    const acl = aclEntries(t).Adapter;
    assert.ok(acl.includes('in udp 6081 10.1.0.0/22'));
    assert.ok(acl.includes('in udp 4789 10.1.0.0/22'));
    const sgs = t.findResources('AWS::EC2::SecurityGroup');
    const adapterSg = Object.values(sgs).find((g) => /^mirror-replay adapters/.test(g.Properties.GroupDescription))!;
    const ingress = (adapterSg.Properties.SecurityGroupIngress as Json[]).map((r) => `${r.IpProtocol} ${r.FromPort}`).sort();
    assert.deepEqual(ingress, ['tcp 8079', 'udp 6081']);
  });

  test('cdk-nag: no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks(new App()).validateScope(gw);
    assert.deepEqual(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`), []);
  });
});

describe('fleet sessions construct (scale-out stack)', () => {
  const [fnId, fn] = fleetFunction(scale);

  test('an EventBridge rule on instances running and terminated invokes the Lambda', () => {
    const [ruleId, rule] = only(scale, 'AWS::Events::Rule');
    assert.deepEqual(rule.Properties.EventPattern, {
      source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'], detail: { state: ['running', 'terminated'] },
    });
    assert.deepEqual(rule.Properties.Targets.map((x: Json) => x.Arn), [{ 'Fn::GetAtt': [fnId, 'Arn'] }]);
    scale.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction', Principal: 'events.amazonaws.com', FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] }, SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
  });

  test('the Lambda: a current Node.js runtime, the compiled handler alone, the stack\'s filter/target/VNI/topic', () => {
    assert.equal(fn.Properties.Runtime, 'nodejs24.x');
    const env = fn.Properties.Environment.Variables;
    const [topicId] = only(scale, 'AWS::SNS::Topic');
    assert.deepEqual(env.TOPIC_ARN, { Ref: topicId });
    assert.deepEqual([env.SELECT_TAG_KEY, env.SELECT_TAG_VALUE, env.FLEET], ['mirror-replay:mirror-source', 'MirrorReplayScaleOut', 'MirrorReplayScaleOut']);
    assert.equal(env.METRIC_NAMESPACE, 'MirrorReplay');
    // Failed events (after Lambda's retries) go to the same topic: none is dropped unheard.
    scale.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId }, MaximumRetryAttempts: 2, DestinationConfig: { OnFailure: { Destination: { Ref: topicId } } },
    });
    const assembly = app.synth();
    const hash = /^([0-9a-f]{64})\.zip$/.exec(fn.Properties.Code.S3Key)![1];
    assert.deepEqual(readdirSync(join(assembly.directory, `asset.${hash}`)), ['fleet-sessions.mjs']);
  });

  test('least privilege: the role\'s statements, each with its resource and condition', () => {
    const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
    const policies = resources(scale, 'AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: Json) => r.Ref === roleId));
    const statements = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
    const bySid = Object.fromEntries(statements.filter((x) => x.Sid).map((x) => [x.Sid, x]));
    const actions = statements.flatMap((x) => [x.Action].flat()).sort();
    assert.deepEqual(actions, [
      'cloudwatch:PutMetricData', 'ec2:CreateTags', 'ec2:CreateTrafficMirrorSession', 'ec2:CreateTrafficMirrorSession', 'ec2:DeleteTrafficMirrorSession',
      'ec2:DescribeInstances', 'ec2:DescribeTrafficMirrorSessions', 'logs:CreateLogStream', 'logs:PutLogEvents', 'sns:Publish',
    ]);
    assert.ok(statements.every((x) => x.Effect === 'Allow' && ![x.Action].flat().some((a: string) => a.endsWith('*'))));
    assert.deepEqual(bySid.CreateTaggedSession.Condition, { StringEquals: { 'aws:RequestTag/mirror-replay:fleet': 'MirrorReplayScaleOut' } });
    assert.deepEqual(bySid.DeleteOwnSessions.Condition, { StringEquals: { 'aws:ResourceTag/mirror-replay:fleet': 'MirrorReplayScaleOut' } });
    assert.deepEqual(bySid.TagOnCreate.Condition, { StringEquals: { 'ec2:CreateAction': 'CreateTrafficMirrorSession' } });
    assert.deepEqual(bySid.UnmirroredMetric.Condition, { StringEquals: { 'cloudwatch:namespace': 'MirrorReplay' } });
    const pinned = JSON.stringify(bySid.CreateSessionFromAnyEniToOurTarget.Resource);
    assert.match(pinned, /traffic-mirror-target\/",\{"Ref":"MirrorTarget"\}/);
    assert.match(pinned, /traffic-mirror-filter\/",\{"Ref":"Filter"\}/);
    const sns = statements.find((x) => x.Action === 'sns:Publish')!;
    assert.deepEqual(sns.Resource, { Ref: only(scale, 'AWS::SNS::Topic')[0] });
  });

  test('the production stand-in carries the source tag and starts only once the rule exists', () => {
    const [id, source] = resources(scale, 'AWS::EC2::Instance').find(([, i]) => /echo production/.test(script(i.Properties.UserData)))!;
    assert.ok((source.Properties.Tags as Json[]).some((x) => x.Key === 'mirror-replay:mirror-source' && x.Value === 'MirrorReplayScaleOut'), id);
    const [ruleId] = only(scale, 'AWS::Events::Rule');
    assert.ok((source.DependsOn as string[]).includes(ruleId), 'instance starts before the rule exists');
  });
});

describe('context keys', () => {
  test('compare and target are read like any CDK context (CDK_CONTEXT_JSON, -c): strings or booleans', () => {
    const { topology: t1, scaleOut: s1 } = buildApp({ context: { compare: 'true', target: 'gwlb' } });
    assert.ok(s1.gateway && !s1.nlb);
    assert.deepEqual(filterRules(Template.fromStack(t1)), ['egress src 80-80 dst any', 'ingress src any dst 80-80']);
    const { scaleOut: s2 } = buildApp({ context: { compare: false } });
    assert.ok(s2.nlb && !s2.gateway);
    assert.throws(() => buildApp({ context: { target: 'alb' } }), /context target must be nlb or gwlb, got "alb"/);
    assert.throws(() => buildApp({ context: { compare: 'yes' } }), /context compare must be true or false/);
  });
});
