import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../../deploy/aws/lib/app.js';
import { ACKNOWLEDGED } from '../../deploy/aws/lib/nag.js';
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
  test('the NLB listens on UDP 4789 and is the mirror target of the session', () => {
    const [nlbId, nlb] = only(scale, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    assert.equal(nlb.Properties.Type, 'network');
    assert.equal(nlb.Properties.Scheme, 'internal');
    const [, listener] = only(scale, 'AWS::ElasticLoadBalancingV2::Listener');
    assert.deepEqual([listener.Properties.Protocol, listener.Properties.Port], ['UDP', 4789]);
    const [targetId, target] = only(scale, 'AWS::EC2::TrafficMirrorTarget');
    assert.deepEqual(target.Properties.NetworkLoadBalancerArn, { Ref: nlbId });
    const [, session] = only(scale, 'AWS::EC2::TrafficMirrorSession');
    assert.deepEqual(session.Properties.TrafficMirrorTargetId, { Ref: targetId });
    assert.deepEqual(session.Properties.VirtualNetworkId, { Ref: 'Vni' });
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
    for (const a of ACKNOWLEDGED) assert.ok(a.reason.length > 40, `${a.id}: reason too short`);
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
