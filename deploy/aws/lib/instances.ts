// EC2 pieces shared by both stacks.
import { Construct } from 'constructs';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { CfnParameter } from 'aws-cdk-lib';
import { packageVersion } from './contract.js';

/** Encrypted gp3 root volume (AL2023 needs at least 8 GiB; npm and g++ want room). */
export const ROOT_VOLUME: ec2.BlockDevice = {
  deviceName: '/dev/xvda',
  volume: ec2.BlockDeviceVolume.ebs(16, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }),
};

export const AL2023 = () => ec2.MachineImage.latestAmazonLinux2023();

/** The deploy-time parameters both stacks take. */
export function stackParameters(scope: Construct) {
  const vni = new CfnParameter(scope, 'Vni', {
    type: 'Number',
    default: 1,
    minValue: 1,
    maxValue: 16777215,
    description: 'VXLAN network identifier of the mirror session; the adapters\' vxlan0 gets the same one',
  });
  const adminCidr = new CfnParameter(scope, 'AdminCidr', {
    type: 'String',
    allowedPattern: '^(\\d{1,3}\\.){3}\\d{1,3}/\\d{1,2}$',
    description: 'Where SSH to the source (jump host) may come from, e.g. 203.0.113.7/32',
  });
  const packageSpec = new CfnParameter(scope, 'MirrorReplayPackage', {
    type: 'String',
    default: `mirror-replay@${packageVersion()}`,
    // Goes into the boot script: no spaces, quotes, ;, &, |, $ or backquotes.
    allowedPattern: '^[A-Za-z0-9@/._:~^+=%?#-]+$',
    description: 'What `npm install -g` installs on the adapters: a release (mirror-replay@X.Y.Z) or a tarball URL',
  });
  return { vni, adminCidr, packageSpec };
}

export interface EniInstanceProps {
  readonly vpc: ec2.IVpc;
  readonly subnet: ec2.ISubnet;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly instanceType: ec2.InstanceType;
  readonly userData: ec2.UserData;
  readonly keyPair?: ec2.IKeyPair;
  readonly description: string;
}

/**
 * An instance whose primary network interface is created explicitly, so that its id can be a
 * mirror source or target (AWS::EC2::Instance does not return its ENI's id).
 */
export class EniInstance extends Construct {
  readonly eni: ec2.CfnNetworkInterface;
  readonly instance: ec2.Instance;

  constructor(scope: Construct, id: string, props: EniInstanceProps) {
    super(scope, id);
    this.eni = new ec2.CfnNetworkInterface(this, 'Eni', {
      subnetId: props.subnet.subnetId,
      groupSet: [props.securityGroup.securityGroupId],
      description: props.description,
    });
    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: { subnets: [props.subnet] },
      securityGroup: props.securityGroup,
      instanceType: props.instanceType,
      machineImage: AL2023(),
      userData: props.userData,
      userDataCausesReplacement: true,
      keyPair: props.keyPair,
      blockDevices: [ROOT_VOLUME],
      detailedMonitoring: true,
      ssmSessionPermissions: true,
    });
    const cfn = this.instance.node.defaultChild as ec2.CfnInstance;
    // IMDSv2 only. Set on the instance itself: the L2's requireImdsv2 adds a launch template named
    // after the construct id, which would collide between instances and between the two stacks.
    cfn.metadataOptions = { httpTokens: 'required', httpEndpoint: 'enabled' };
    cfn.addPropertyOverride('NetworkInterfaces', [{ DeviceIndex: '0', NetworkInterfaceId: this.eni.ref }]);
    cfn.addPropertyDeletionOverride('SubnetId');
    cfn.addPropertyDeletionOverride('SecurityGroupIds');
  }

  get privateIp(): string {
    return this.eni.attrPrimaryPrivateIpAddress;
  }
}
