import { build } from 'esbuild';
import { bundleOptions } from '#infra/constructs/studio-function';
const [name, target] = [process.argv[2]!, process.argv[3]!];
const r = await build({ ...bundleOptions(name, `/tmp/bundle-${name}`), metafile: true, write: false });
const inputs = r.metafile!.inputs;
// shortest static chain from the entry to a module whose path contains target
const entry = Object.keys(inputs).find((k) => k.includes(`functions/${name}/handler`))!;
const prev = new Map<string, string>(); const q = [entry]; const seen = new Set(q);
while (q.length) { const cur = q.shift()!; if (cur.includes(target)) { const chain=[cur]; let c=cur; while (prev.has(c)) { c = prev.get(c)!; chain.unshift(c);} console.log(chain.join('\n  -> ')); process.exit(0);} for (const i of inputs[cur]?.imports ?? []) { if (i.kind !== 'import-statement' || i.external || seen.has(i.path)) continue; seen.add(i.path); prev.set(i.path, cur); q.push(i.path);} }
console.log('no static chain from', entry);
