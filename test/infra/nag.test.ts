import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { buildStack } from './fixture.ts';

/**
 * cdk-nag 3 is a CDK policy-validation plugin: findings are not annotations but violations of the
 * plugin report (`validateScope`), and `app.synth()` fails when there are any.
 */
function nagReport(overrides: Parameters<typeof buildStack>[0] = {}) {
  const { app, stack } = buildStack(overrides);
  const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(stack);
  const findings = report.violations.map(
    (v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
  );
  return { app, stack, findings };
}

describe('cdk-nag AwsSolutions', () => {
  it('reports no errors and no warnings for the stack with its own user pool', () => {
    // Prepare
    const { stack, findings } = nagReport();

    // Act
    const annotations = Annotations.fromStack(stack).findError(
      '*',
      Match.stringLikeRegexp('AwsSolutions-.*'),
    );

    // Assess
    expect(findings).toEqual([]);
    expect(annotations).toEqual([]);
  }, 120_000);

  it('reports nothing for the stack that trusts an existing OIDC issuer either', () => {
    // Prepare
    const overrides = { jwtIssuer: 'https://login.example.com/', jwtAudience: ['studio-app'] };

    // Act
    const { findings } = nagReport(overrides);

    // Assess
    expect(findings).toEqual([]);
  });

  it('still catches a finding nobody acknowledged, so the clean result means something', async () => {
    // Prepare
    const { app, stack } = buildStack();
    const { Bucket } = await import('aws-cdk-lib/aws-s3');
    new Bucket(stack, 'UnreviewedBucket');

    // Act
    const report = new AwsSolutionsChecks(app).validateScope(stack);

    // Assess
    expect(report.violations.map((v) => v.ruleName)).toEqual(
      expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']),
    );
  });

  it('lets synthesis through when the checks are registered as a validation plugin', () => {
    // Prepare
    const { app } = nagReport();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));

    // Act
    const synth = () => app.synth();

    // Assess
    expect(synth).not.toThrow();
    expect(app).toBeInstanceOf(App);
  });
});
