import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';
import { acknowledge } from '#infra/nag';

export interface StudioAuthProps {
  /**
   * An existing OIDC issuer (e.g. the studio's Auth0/Entra/Cognito issuer URL). When set together
   * with `jwtAudience`, no user pool is created.
   */
  readonly jwtIssuer?: string;
  readonly jwtAudience?: readonly string[];
  /** Protects the user pool from deletion. */
  readonly deletionProtection: boolean;
}

/**
 * The JWT authorizer of the HTTP API: a Cognito user pool (invite-only, `admins` group, one public
 * SPA client) or an existing OIDC issuer + audience.
 */
export class StudioAuth extends Construct {
  readonly authorizer: HttpJwtAuthorizer;
  readonly issuer: string;
  readonly audience: string[];
  readonly userPool?: cognito.UserPool;
  readonly userPoolClient?: cognito.UserPoolClient;
  readonly adminsGroup?: cognito.UserPoolGroup;

  constructor(scope: Construct, id: string, props: StudioAuthProps) {
    super(scope, id);
    if (props.jwtIssuer) {
      if (!props.jwtAudience?.length) {
        throw new Error('studio-mail:jwtIssuer needs studio-mail:jwtAudience (the client id / audience)');
      }
      this.issuer = props.jwtIssuer;
      this.audience = [...props.jwtAudience];
    } else {
      const userPool = new cognito.UserPool(this, 'UserPool', {
        selfSignUpEnabled: false,
        signInAliases: { email: true },
        autoVerify: { email: true },
        standardAttributes: { email: { required: true, mutable: true } },
        // Shows up as the `custom:studioId` claim in ID tokens (STUDIO_CLAIM).
        customAttributes: {
          studioId: new cognito.StringAttribute({ minLen: 1, maxLen: 64, mutable: false }),
        },
        passwordPolicy: {
          minLength: 12,
          requireLowercase: true,
          requireUppercase: true,
          requireDigits: true,
          requireSymbols: true,
          tempPasswordValidity: Duration.days(3),
        },
        mfa: cognito.Mfa.OPTIONAL,
        mfaSecondFactor: { otp: true, sms: false },
        accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
        featurePlan: cognito.FeaturePlan.ESSENTIALS,
        deletionProtection: props.deletionProtection,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      this.adminsGroup = userPool.addGroup('AdminsGroup', {
        groupName: 'admins',
        description: 'Studio administrators (may change company-wide email settings).',
      });
      this.userPoolClient = userPool.addClient('WebClient', {
        generateSecret: false,
        authFlows: { userSrp: true },
        disableOAuth: true,
        preventUserExistenceErrors: true,
        enableTokenRevocation: true,
        idTokenValidity: Duration.hours(1),
        accessTokenValidity: Duration.hours(1),
        refreshTokenValidity: Duration.days(30),
      });
      this.userPool = userPool;
      this.issuer = userPool.userPoolProviderUrl;
      // ID tokens carry `aud` = client id (and the custom:studioId claim), so the API expects them.
      this.audience = [this.userPoolClient.userPoolClientId];

      acknowledge(
        userPool,
        'AwsSolutions-COG2',
        'TOTP MFA is enabled as OPTIONAL (no SMS cost): REQUIRED would make the first sign-in of invited ' +
          'studio staff fail in clients that do not implement the MFA_SETUP challenge. Switch to Mfa.REQUIRED ' +
          'once the studio front end does.',
      );
      acknowledge(
        userPool,
        'AwsSolutions-COG8',
        'The Plus feature plan (threat protection) is billed per monthly active user; this pool is ' +
          'invite-only (self sign-up disabled) for a handful of studio staff with a 12-character, ' +
          'four-class password policy. A studio that wants adaptive authentication sets FeaturePlan.PLUS.',
      );
    }
    this.authorizer = new HttpJwtAuthorizer('JwtAuthorizer', this.issuer, {
      jwtAudience: this.audience,
      identitySource: ['$request.header.Authorization'],
    });
  }
}
