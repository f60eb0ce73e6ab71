import { build } from 'esbuild';
import { esbuildOptions, functionEntry, functionNames } from '#infra/constructs/studio-function';

for (const name of functionNames) {
  const { outfile, ...o } = esbuildOptions(functionEntry(name), 'x');
  const r = await build({
    ...o,
    outdir: `/tmp/i13/split/${name}`,
    splitting: true,
    entryNames: 'index',
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    metafile: true,
  });
  const outs = r.metafile!.outputs;
  const entryKey = Object.keys(outs).find((k) => k.endsWith('/index.mjs'))!;
  const seen = new Set<string>();
  const stack = [entryKey];
  while (stack.length) {
    const k = stack.pop()!;
    if (seen.has(k)) continue;
    seen.add(k);
    for (const i of outs[k]!.imports) if (i.kind === 'import-statement' && outs[i.path]) stack.push(i.path);
  }
  const staticBytes = [...seen].reduce((s, k) => s + outs[k]!.bytes, 0);
  const byPkg: Record<string, number> = {};
  for (const k of seen)
    for (const [file, { bytesInOutput }] of Object.entries(outs[k]!.inputs)) {
      const m = file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
      const key = m ? m[1]! : file.split('/').slice(0, 2).join('/');
      byPkg[key] = (byPkg[key] ?? 0) + bytesInOutput;
    }
  const top = Object.entries(byPkg)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 14);
  console.log(
    name,
    'static',
    staticBytes,
    'chunks',
    Object.keys(outs).filter((k) => !k.endsWith('.map')).length,
    top.map(([k, v]) => `${k}:${Math.round(v / 1024)}K`).join(' '),
  );
}
