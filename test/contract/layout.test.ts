/**
 * Keeps the layout honest by walking the import graph of the sources: no import cycles (between
 * runtime imports; `import type` is erased and may point anywhere), and nothing under lib/domain
 * imports the AWS SDK, nodemailer or the data layer (not even a type).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const SOURCE_DIRS = ['lib', 'functions', 'infra', 'local'];
const ALIASES: Record<string, string> = {
  '#lib/': 'lib/',
  '#functions/': 'functions/',
  '#infra/': 'infra/',
  '#local/': 'local/',
  '#test/': 'test/',
};

interface Import {
  specifier: string;
  typeOnly: boolean;
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return filesUnder(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** Static imports and re-exports (multi-line too), side-effect imports, dynamic `import('…')`. */
function importsOf(source: string): Import[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: Import[] = [];
  for (const m of text.matchAll(
    /(?:^|[\n;])\s*(import|export)\s+(type\s+)?([^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g,
  )) {
    const clause = m[3] ?? '';
    if (m[1] === 'export' && !clause) continue; // `export const x = '…'` is no import
    out.push({ specifier: m[4] as string, typeOnly: Boolean(m[2]) });
  }
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g))
    out.push({ specifier: m[1] as string, typeOnly: false });
  return out;
}

/** The project file an import names, or undefined for a package. */
function resolveImport(from: string, specifier: string): string | undefined {
  for (const [alias, dir] of Object.entries(ALIASES))
    if (specifier.startsWith(alias)) return `${dir}${specifier.slice(alias.length)}.ts`;
  if (specifier.startsWith('.')) return relative(root, resolve(root, dirname(from), specifier));
  return undefined;
}

const files = SOURCE_DIRS.flatMap(filesUnder);
const graph = new Map(
  files.map((file) => {
    const imports = importsOf(readFileSync(join(root, file), 'utf8'));
    return [file, imports.map((i) => ({ ...i, target: resolveImport(file, i.specifier) }))] as const;
  }),
);

/** Every cycle of runtime imports, each once, as the list of files around it. */
function cycles(): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const edge of graph.get(file) ?? []) {
      if (edge.typeOnly || !edge.target || !graph.has(edge.target)) continue;
      const s = state.get(edge.target);
      if (s === 'open') found.push([...stack.slice(stack.indexOf(edge.target)), edge.target]);
      else if (!s) visit(edge.target);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return found;
}

describe('the source layout', () => {
  it('reads every kind of import the sources use', () => {
    // Prepare
    const source = [
      "import { a } from '#lib/a';",
      "import type { B } from './b.ts';",
      'import {\n  c,\n  type D,\n} from "../c.ts";',
      "import 'side-effect';",
      "export { e } from '#lib/e';",
      "export const notAnImport = 'x';",
      "const f = await import('#lib/f');",
    ].join('\n');
    // Act
    const found = importsOf(source);
    // Assess
    expect(found).toEqual([
      { specifier: '#lib/a', typeOnly: false },
      { specifier: './b.ts', typeOnly: true },
      { specifier: '../c.ts', typeOnly: false },
      { specifier: 'side-effect', typeOnly: false },
      { specifier: '#lib/e', typeOnly: false },
      { specifier: '#lib/f', typeOnly: false },
    ]);
  });

  it('resolves every project import to a file that exists', () => {
    // Assess
    expect(files.length).toBeGreaterThan(80);
    for (const [file, edges] of graph)
      for (const edge of edges)
        if (edge.target)
          expect(
            graph.has(edge.target) || edge.target.startsWith('test/'),
            `${file} → ${edge.specifier}`,
          ).toBe(true);
  });

  it('has no import cycles', () => {
    expect(cycles().map((c) => c.join(' → '))).toEqual([]);
  });

  it('keeps lib/domain free of the AWS SDK, nodemailer and the data layer', () => {
    // Prepare
    const forbidden = (edge: { specifier: string; target?: string }) =>
      edge.specifier.startsWith('@aws-sdk/') ||
      edge.specifier === 'nodemailer' ||
      edge.specifier.startsWith('nodemailer/') ||
      edge.target?.startsWith('lib/data/') ||
      edge.target?.startsWith('lib/adapters/') ||
      edge.target?.startsWith('lib/app/');
    // Act
    const offending = [...graph]
      .filter(([file]) => file.startsWith('lib/domain/'))
      .flatMap(([file, edges]) => edges.filter(forbidden).map((e) => `${file} → ${e.specifier}`));
    // Assess
    expect([...graph.keys()].filter((f) => f.startsWith('lib/domain/')).length).toBeGreaterThan(5);
    expect(offending).toEqual([]);
  });

  it('imports zod at runtime only as a namespace, so bundles keep only the schemas they use', () => {
    // Prepare: `import { z } from 'zod'` (or a default import) binds the whole namespace object,
    // which esbuild cannot shake: every locale and the JSON Schema code land in the cold path.
    const named = /^\s*import\s+(?!type\b)(?:\{[^}]*\}|[A-Za-z_$][\w$]*)\s+from\s+['"]zod(?:\/[^'"]*)?['"]/m;
    // Act
    const offending = [...graph.keys()].filter((file) => named.test(readFileSync(join(root, file), 'utf8')));
    // Assess
    expect(
      [...graph.keys()].some((file) => readFileSync(join(root, file), 'utf8').includes("from 'zod'")),
    ).toBe(true);
    expect(offending).toEqual([]);
  });
});
