import { describe, expect, it } from 'vitest';
import { diagnose } from '#lib/send/diagnose';

const ses = {
  transport: { method: 'ses' as const },
  sources: { transport: 'company' as const, emailAddress: 'company' as const },
  from: 'hello@lumen.test',
  to: ['a@example.test'],
};

describe('AWS internals in diagnoses', () => {
  it('keeps role ARNs and the account id out of an SES diagnosis', async () => {
    // Prepare
    const error = Object.assign(
      new Error(
        'User: arn:aws:sts::123456789012:assumed-role/studio-mail-Send/fn is not authorized to perform: ses:SendRawEmail on resource: arn:aws:ses:eu-west-1:123456789012:identity/lumen.test',
      ),
      { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } },
    );
    // Act
    const d = await diagnose(error, ses);
    // Assess
    const text = JSON.stringify(d);
    expect(text).not.toContain('123456789012');
    expect(text).not.toContain('assumed-role');
    expect(text).toContain('[arn]');
  });

  it('echoes only SMTP replies, not whatever else answered on the port', async () => {
    // Prepare
    const smtp = {
      ...ses,
      transport: { method: 'smtp' as const, server: 'mail.lumen.test', port: 80, security: 'none' as const },
    };
    const error = Object.assign(new Error('Invalid greeting'), {
      code: 'EPROTOCOL',
      response: 'HTTP/1.1 200 OK ami-id: i-0secret',
      command: 'CONN',
    });
    // Act
    const d = await diagnose(error, smtp);
    // Assess
    expect(d).toMatchObject({ field: 'transport.port' });
    expect(JSON.stringify(d)).not.toContain('ami-id');
  });
});
