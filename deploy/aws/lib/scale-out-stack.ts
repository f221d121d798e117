// Stack 2: scale-out. The mirror target is an internal Network Load Balancer with a UDP 4789
// listener (target 'nlb') or a Gateway Load Balancer endpoint (target 'gwlb'). Either keeps all
// traffic of one mirror source on one adapter of an Auto Scaling group (source-IP stickiness), and
// sends traffic only to adapters whose daemon accepts TCP on its --health-check-port. Production
// instances are mirrored by the fleet construct: every ENI of an instance carrying the source tag
// gets a session while it runs.
import type { Construct } from 'constructs';
import { CfnOutput, Duration, Stack, Tags, Validations, type StackProps } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { ADAPTER_TAG, FLEET_SOURCE_TAG, GENEVE_PORT, HEALTH_CHECK_PORT, VXLAN_PORT } from './contract.js';
import { FleetSessions, type FleetSelector } from './fleet.js';
import { GatewayMirrorTarget } from './gwlb.js';
import { AL2023, EniInstance, ROOT_VOLUME, stackParameters } from './instances.js';
import { mirrorFilter } from './mirror.js';
import { MirrorNetwork } from './network.js';
import { adapterUserData, demoHttpUserData } from './user-data.js';

export interface ScaleOutProps extends StackProps {
  /** Default 10.1.0.0/22: /26 subnets in two AZs leave room for the group to grow. */
  readonly cidr?: string;
  readonly servicePort?: number;
  readonly keyPairName?: string;
  readonly minAdapters?: number;
  readonly maxAdapters?: number;
  readonly adapterInstanceType?: ec2.InstanceType;
  /** Shadow testing: mirror production's answers too and turn on `compare:` on the adapters. */
  readonly compare?: boolean;
  /** The mirror target: an NLB (UDP 4789, the default) or a Gateway Load Balancer endpoint. */
  readonly target?: MirrorTargetKind;
  /** Which production instances get sessions; default: tag mirror-replay:mirror-source=<stack name>. */
  readonly fleet?: FleetSelector;
}

export type MirrorTargetKind = 'nlb' | 'gwlb';

export class MirrorScaleOutStack extends Stack {
  readonly network: MirrorNetwork;
  /** target 'nlb' only. */
  readonly nlb?: elbv2.NetworkLoadBalancer;
  readonly targetGroup?: elbv2.NetworkTargetGroup;
  /** target 'gwlb' only. */
  readonly gateway?: GatewayMirrorTarget;
  readonly adapters: autoscaling.AutoScalingGroup;
  readonly filter: ec2.CfnTrafficMirrorFilter;
  readonly fleet: FleetSessions;
  readonly scalingEvents: sns.Topic;

  constructor(scope: Construct, id: string, props: ScaleOutProps = {}) {
    const kind = props.target ?? 'nlb';
    const compare = props.compare ?? false;
    super(scope, id, { description: `mirror-replay: ${kind === 'nlb' ? 'NLB (UDP 4789)' : 'Gateway Load Balancer (GENEVE)'} in front of an Auto Scaling group of adapters`, ...props });
    const servicePort = props.servicePort ?? 80;
    const params = stackParameters(this);
    this.network = new MirrorNetwork(this, 'Network', {
      cidr: props.cidr ?? '10.1.0.0/22',
      cidrMask: 26,
      maxAzs: 2,
      adminCidr: params.adminCidr.valueAsString,
      servicePort,
      healthCheck: true,
      gwlb: kind === 'gwlb',
    });
    const vpc = this.network.vpc;
    const keyPair = props.keyPairName ? ec2.KeyPair.fromKeyPairName(this, 'KeyPair', props.keyPairName) : undefined;
    const nano = ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.NANO);

    const sourceSg = new ec2.SecurityGroup(this, 'SourceSg', { vpc, description: 'production stand-in: the service port from anywhere, SSH from the admin network' });
    sourceSg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(servicePort), 'the production service');
    sourceSg.addIngressRule(ec2.Peer.ipv4(params.adminCidr.valueAsString), ec2.Port.tcp(22), 'SSH to the jump host');
    const adapterSg = new ec2.SecurityGroup(this, 'AdapterSg', {
      vpc,
      description: kind === 'nlb' ? 'mirror-replay adapters: VXLAN and health checks through the NLB, SSH from the jump host' : 'mirror-replay adapters: GENEVE and health checks from the GWLB, SSH from the jump host',
    });
    // The NLB keeps the mirror source's address on UDP; the GWLB sends GENEVE from its own nodes.
    // Both health-check from their nodes' addresses.
    if (kind === 'nlb') adapterSg.addIngressRule(ec2.Peer.ipv4(this.network.cidr), ec2.Port.udp(VXLAN_PORT), 'mirrored VXLAN through the NLB');
    else adapterSg.addIngressRule(ec2.Peer.ipv4(this.network.cidr), ec2.Port.udp(GENEVE_PORT), 'mirrored VXLAN in GENEVE from the GWLB');
    adapterSg.addIngressRule(ec2.Peer.ipv4(this.network.cidr), ec2.Port.tcp(HEALTH_CHECK_PORT), `${kind === 'nlb' ? 'NLB' : 'GWLB'} health checks`);
    adapterSg.addIngressRule(sourceSg, ec2.Port.tcp(22), 'SSH from the jump host');
    const targetSg = new ec2.SecurityGroup(this, 'TargetSg', { vpc, description: 'test environment: the service port from the adapters, SSH from the jump host' });
    targetSg.addIngressRule(adapterSg, ec2.Port.tcp(servicePort), 'replayed requests');
    targetSg.addIngressRule(sourceSg, ec2.Port.tcp(22), 'SSH from the jump host');

    const source = new EniInstance(this, 'Source', {
      vpc, subnet: this.network.subnets('source').subnets[0], securityGroup: sourceSg, keyPair, description: 'mirror source (production stand-in)',
      instanceType: nano, userData: demoHttpUserData(servicePort, 'production'),
    });
    const eip = new ec2.CfnEIP(this, 'SourceEip', { domain: 'vpc' });
    new ec2.CfnEIPAssociation(this, 'SourceEipAssociation', { allocationId: eip.attrAllocationId, networkInterfaceId: source.eni.ref });
    const target = new EniInstance(this, 'Target', {
      vpc, subnet: this.network.subnets('target').subnets[0], securityGroup: targetSg, keyPair, description: 'test environment stand-in',
      instanceType: nano, userData: demoHttpUserData(servicePort, 'test'),
    });

    // cdk-nag 3.0.2's EC26 rule throws on an instance without a launch template once the stack has
    // one (the adapters'). Both root volumes are ROOT_VOLUME, encrypted; test/deploy checks it.
    for (const i of [source, target]) {
      Validations.of(i.instance).acknowledge({ id: 'AwsSolutions-EC26', reason: 'Encrypted ROOT_VOLUME (the rule crashes on this stack shape; a test asserts encryption instead).' });
    }
    const role = new iam.Role(this, 'AdapterRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
      description: 'mirror-replay adapters: Session Manager access only',
    });
    const template = new ec2.LaunchTemplate(this, 'AdapterTemplate', {
      instanceType: props.adapterInstanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.SMALL),
      machineImage: AL2023(),
      securityGroup: adapterSg,
      role,
      keyPair,
      blockDevices: [ROOT_VOLUME],
      requireImdsv2: true,
      detailedMonitoring: true,
      userData: adapterUserData({
        vni: params.vni.valueAsString,
        packageSpec: params.packageSpec.valueAsString,
        destination: `http://${target.privateIp}${servicePort === 80 ? '' : `:${servicePort}`}`,
        servicePort,
        healthCheck: true,
        compare,
        capture: kind === 'nlb' ? 'vxlan' : 'encap',
      }),
    });
    // Launches, terminations and their failures, for whoever subscribes (an adapter that fails to
    // boot shows up here first); also production instances the fleet construct could not mirror.
    this.scalingEvents = new sns.Topic(this, 'AdapterScalingEvents', {
      enforceSSL: true,
      masterKey: kms.Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns'),
    });
    this.adapters = new autoscaling.AutoScalingGroup(this, 'Adapters', {
      notifications: [{ topic: this.scalingEvents }],
      vpc,
      vpcSubnets: this.network.subnets('adapter'),
      launchTemplate: template,
      minCapacity: props.minAdapters ?? 2,
      maxCapacity: props.maxAdapters ?? 6,
      // Replace an adapter the load balancer finds unhealthy; first boot installs Node.js and builds an addon.
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({ additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB], gracePeriod: Duration.minutes(10) }),
    });
    this.adapters.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });
    Tags.of(this.adapters).add(ADAPTER_TAG.key, ADAPTER_TAG.value);

    let targetId: string;
    if (kind === 'nlb') ({ nlb: this.nlb, targetGroup: this.targetGroup, targetId } = this.addNlb(vpc));
    else ({ gateway: this.gateway, targetId } = this.addGwlb(vpc));
    this.filter = mirrorFilter(this, { servicePort, compare });
    this.fleet = new FleetSessions(this, 'FleetSessions', {
      selector: props.fleet ?? { tag: { key: FLEET_SOURCE_TAG, value: this.stackName } },
      filterId: this.filter.ref,
      targetId,
      vni: params.vni.valueAsNumber,
      topic: this.scalingEvents,
    });
    // The production stand-in is mirrored the way a fleet is: by its tag. It must start after the
    // rule exists, or its `running` event would reach no one.
    if (!props.fleet) Tags.of(source.instance).add(FLEET_SOURCE_TAG, this.stackName);
    source.instance.node.addDependency(this.fleet);

    new CfnOutput(this, 'SourcePublicIp', { value: eip.ref });
    new CfnOutput(this, 'TargetInstanceId', { value: target.instance.instanceId });
    if (this.nlb) new CfnOutput(this, 'NlbArn', { value: this.nlb.loadBalancerArn });
    if (this.gateway) new CfnOutput(this, 'GwlbEndpointId', { value: this.gateway.endpoint.ref });
    new CfnOutput(this, 'ScalingEventsTopicArn', { value: this.scalingEvents.topicArn, description: 'subscribe to hear about adapter launches and failures, and instances that could not be mirrored' });
  }

  /** The NLB target: UDP 4789, source-IP stickiness. */
  private addNlb(vpc: ec2.IVpc) {
    const nlb = new elbv2.NetworkLoadBalancer(this, 'Nlb', {
      vpc,
      internetFacing: false,
      vpcSubnets: this.network.subnets('adapter'),
      // Any healthy adapter may take a source, whichever AZ it is in.
      crossZoneEnabled: true,
    });
    Validations.of(nlb).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason: 'NLB access logs cover TLS listeners only; this NLB has a single UDP listener, so there is nothing to log.',
    });
    const listener = nlb.addListener('Vxlan', { port: VXLAN_PORT, protocol: elbv2.Protocol.UDP });
    const targetGroup = listener.addTargets('Adapters', {
      port: VXLAN_PORT,
      protocol: elbv2.Protocol.UDP,
      targets: [this.adapters],
      healthCheck: {
        protocol: elbv2.Protocol.TCP,
        port: String(HEALTH_CHECK_PORT),
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
      deregistrationDelay: Duration.seconds(30),
    });
    // Without stickiness the NLB picks a target per outer 5-tuple, whose UDP source port AWS derives
    // from the inner flow: a request and its answer could reach different adapters. Source IP is
    // the mirror source's ENI (the NLB keeps it for instance targets), so one source, one adapter.
    targetGroup.setAttribute('stickiness.enabled', 'true');
    targetGroup.setAttribute('stickiness.type', 'source_ip');
    const mirrorTarget = new ec2.CfnTrafficMirrorTarget(this, 'MirrorTarget', {
      networkLoadBalancerArn: nlb.loadBalancerArn,
      description: 'mirror-replay NLB (UDP 4789)',
    });
    return { nlb, targetGroup, targetId: mirrorTarget.ref };
  }

  /** The GWLB target: GENEVE 6081 to the adapters, 2-tuple stickiness. */
  private addGwlb(vpc: ec2.IVpc) {
    const gateway = new GatewayMirrorTarget(this, 'Gateway', { vpc, subnets: this.network.subnets('adapter').subnets });
    Validations.of(gateway.loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason: 'A Gateway Load Balancer has no access logs (it forwards packets, not requests); VPC flow logs cover the VPC.',
    });
    // The L2 group knows no GWLB target group: register the adapters on the L1.
    (this.adapters.node.defaultChild as autoscaling.CfnAutoScalingGroup).targetGroupArns = [gateway.targetGroup.ref];
    return { gateway, targetId: gateway.mirrorTarget.ref };
  }
}
