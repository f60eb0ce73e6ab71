/**
 * cdk-nag 3 acknowledgements. cdk-nag 3 is a CDK policy-validation plugin (not an Aspect) and
 * reads acknowledgements recorded with `Validations.of(construct).acknowledge()`; findings of rules
 * such as AwsSolutions-IAM5 are acknowledged one by one as `RuleId[Finding]`.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Acknowledges rule `id` (e.g. `AwsSolutions-S1`) on `scope` and everything below it. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Acknowledges one wildcard resource (`AwsSolutions-IAM5[Resource::…]`) in the policies of `scope`.
 * The finding names the resource the way cdk-nag flattens it (`<Logical.Arn>/*`,
 * `arn:<AWS::Partition>:…`), so the ARN is resolved here with the same rules.
 */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  const flat = flattenReference(Stack.of(scope).resolve(resource));
  if (!flat.includes('*')) throw new Error(`acknowledgeWildcardResource: ${flat} has no wildcard`);
  acknowledge(scope, `AwsSolutions-IAM5[Resource::${flat}]`, reason);
}

/** Mirrors cdk-nag's flattening of CloudFormation intrinsics into a suppressible string. */
export function flattenReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (Array.isArray(o['Fn::Join'])) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if (o['Fn::Sub'] !== undefined) return flattenReference(o['Fn::Sub']);
    if (Array.isArray(o['Fn::GetAtt'])) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if (o['Fn::ImportValue'] !== undefined) return flattenReference(o['Fn::ImportValue']);
    if (o.Ref !== undefined) return `<${flattenReference(o.Ref)}>`;
  }
  return JSON.stringify(node);
}
