/**
 * CDK feature flags this app relies on, pinned here (rather than taken from the moving
 * `CURRENTLY_RECOMMENDED_FLAGS` of whatever aws-cdk-lib is installed) so that an upgrade never
 * silently changes the synthesised template. They are passed to `new App({ context })` as
 * defaults; cdk.json context still wins, so moving them into cdk.json changes nothing.
 */
export const featureFlags: Record<string, unknown> = {
  '@aws-cdk/core:target-partitions': ['aws', 'aws-cn'],
  '@aws-cdk/core:enablePartitionLiterals': true,
  '@aws-cdk/core:checkSecretUsage': true,
  '@aws-cdk/core:validateSnapshotRemovalPolicy': true,
  '@aws-cdk/core:includePrefixInUniqueNameGeneration': true,
  '@aws-cdk/core:explicitStackTags': true,
  '@aws-cdk/aws-iam:minimizePolicies': true,
  '@aws-cdk/aws-iam:importedRoleStackSafeDefaultPolicyName': true,
  // Server access logs are delivered through a bucket policy, not the legacy LogDeliveryWrite ACL
  // (new buckets have ACLs disabled).
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  '@aws-cdk/aws-s3:createDefaultLoggingPolicy': true,
  '@aws-cdk/aws-s3:publicAccessBlockedByDefault': true,
  '@aws-cdk/aws-events:eventsTargetQueueSameAccount': true,
  '@aws-cdk/aws-events:requireEventBusPolicySid': true,
  '@aws-cdk/aws-lambda:recognizeLayerVersion': true,
  '@aws-cdk/aws-lambda:createNewPoliciesWithAddToRolePolicy': false,
  '@aws-cdk/aws-lambda-nodejs:sdkV3ExcludeSmithyPackages': true,
  '@aws-cdk/aws-dynamodb:resourcePolicyPerReplica': true,
  '@aws-cdk/aws-dynamodb:retainTableReplica': true,
};
