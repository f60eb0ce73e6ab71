/**
 * Builds the studio-mail stack for CDK assertions tests. Bundling is switched off
 * (`aws:cdk:bundling-stacks: []` makes the function assets placeholders); the bundling test
 * and `npm run synth` bundle for real.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { featureFlags } from '#infra/feature-flags';
import { StudioMailStack, type StudioMailStackProps } from '#infra/stack';

export const account = '123456789012';
export const region = 'eu-central-1';

export const defaultProps: StudioMailStackProps = {
  env: { account, region },
  secretPrefix: 'studio-mail/',
  senderIdentity: 'mail.example.com',
  notificationSender: 'notifications@mail.example.com',
  corsOrigins: ['https://studio.example.com'],
  deletionProtection: true,
  jwtAudience: [],
  studioClaim: 'custom:studioId',
  logLevel: 'INFO',
};

export function buildStack(overrides: Partial<StudioMailStackProps> = {}) {
  const app = new App({ context: { ...featureFlags, 'aws:cdk:bundling-stacks': [] } });
  const stack = new StudioMailStack(app, 'StudioMailTest', { ...defaultProps, ...overrides });
  return { app, stack, template: Template.fromStack(stack) };
}

export type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

export interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, unknown>;
}

export const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** Logical id of the only resource of `type` whose id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1)
    throw new Error(`expected one ${type} starting with ${prefix}, got ${ids.join(', ')}`);
  return ids[0]!;
}

/** Every Allow statement of the identity policy attached to the role whose id starts with `rolePrefix`. */
export function roleStatements(template: Template, rolePrefix: string): Statement[] {
  const roleId = logicalId(template, 'AWS::IAM::Role', rolePrefix);
  const policies = template.findResources('AWS::IAM::Policy') as Resources;
  return Object.values(policies)
    .filter((p) => JSON.stringify(p.Properties?.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap((p) => (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
}

/** Statements of `rolePrefix` that grant `action`. */
export function statementsFor(template: Template, rolePrefix: string, action: string): Statement[] {
  return roleStatements(template, rolePrefix).filter((s) => asArray(s.Action).includes(action));
}
