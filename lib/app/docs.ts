/**
 * The API reference page (`GET /docs`): the OpenAPI document rendered by swagger-ui-dist, whose
 * files are served from the npm package by `GET /docs/{file}`: no CDN, so the page works offline
 * and leaks no visit to a third party. In Lambda the files sit in the bundle's `swagger-ui/`
 * folder (the stack copies them there); locally and in tests they are read from node_modules.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '#lib/domain/errors';

/** The files the page loads, and their content types; nothing else is served. */
export const DOCS_FILES = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
} as const;
export type DocsFile = keyof typeof DOCS_FILES;

/** Where the stack puts the files, next to the bundled handler. */
export const BUNDLED_DOCS_DIR = 'swagger-ui';

/**
 * The folder holding swagger-ui-dist's files: `SWAGGER_UI_DIR`, else `swagger-ui/` in the Lambda
 * task root (beside `index.mjs`) or beside this module, else the installed npm package.
 */
export function swaggerUiDir(env: Record<string, string | undefined> = process.env): string {
  if (env.SWAGGER_UI_DIR) return env.SWAGGER_UI_DIR;
  // Lambda: beside index.mjs in the task root (this module may sit in a chunk one folder down).
  for (const root of [env.LAMBDA_TASK_ROOT, dirname(fileURLToPath(import.meta.url))]) {
    if (!root) continue;
    const bundled = join(root, BUNDLED_DOCS_DIR);
    if (existsSync(join(bundled, 'swagger-ui-bundle.js'))) return bundled;
  }
  return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

const isDocsFile = (name: string): name is DocsFile => Object.hasOwn(DOCS_FILES, name);

/** Reads each file once per process; they do not change while it runs. */
export function docsAssets(dir: () => string = () => swaggerUiDir()) {
  const cache = new Map<DocsFile, Promise<string>>();
  return async (name: string): Promise<{ body: string; contentType: string }> => {
    if (!isDocsFile(name)) throw new NotFoundError('docs file', name);
    let text = cache.get(name);
    if (!text) {
      text = readFile(join(dir(), name), 'utf8');
      cache.set(name, text);
      // A failed read is not kept: the next request tries again.
      text.catch(() => cache.delete(name));
    }
    return { body: await text, contentType: DOCS_FILES[name] };
  };
}

/**
 * The page. Paths are relative (`docs/…`, `openapi.json`) so it also works under a named API
 * Gateway stage. "Try it out" calls the API from the browser; a token goes in "Authorize".
 */
export function docsPage(title: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
</script>
</body>
</html>
`;
}
