import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { esmRequireBanner, StudioFunction } from '#infra/constructs/studio-function';

/** The one test that runs the real esbuild bundling of the functions (the others use placeholders). */
describe('StudioFunction bundling', () => {
  it('ships a minified ESM index.mjs with the require banner and its source map, plus the lazily loaded chunks', () => {
    // Prepare
    const app = new App();
    const stack = new Stack(app, 'BundlingTest');
    new StudioFunction(stack, 'Notify', { name: 'notify', description: 'bundling test', environment: {} });

    // Act
    const assembly = app.synth();

    // Assess
    const assets = readdirSync(assembly.directory).filter((d) => d.startsWith('asset.'));
    expect(assets).toHaveLength(1);
    const dir = join(assembly.directory, assets[0]!);
    const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
    expect(code.startsWith(esmRequireBanner)).toBe(true);
    expect(code).toMatch(/export\s*\{[^}]*as handler|export\s*\{\s*handler/);
    expect(code).toContain('//# sourceMappingURL=index.mjs.map');
    expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
    // Code some requests need (the SES client, nodemailer) is in chunks the entry imports on demand.
    const chunks = readdirSync(join(dir, 'chunks')).filter((f) => f.endsWith('.mjs'));
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(existsSync(join(dir, 'chunks', `${chunk}.map`))).toBe(true);
    expect(code).toMatch(/import\("\.\/chunks\/[^"]+\.mjs"\)/);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
    });
  }, 300_000);
});
