import { DOCS_FILES, docsAssets, docsPage } from '#lib/app/docs';
import type { Route } from './common.ts';

const tag = 'Operations';

/** The API reference page and the swagger-ui files it loads, public like the document itself. */
export function docsRoutes(read = docsAssets()): Route[] {
  return [
    {
      doc: {
        key: 'GET /docs',
        tag,
        access: 'public',
        summary: 'This API reference as a page (Swagger UI), with "Try it out".',
        responseType: { contentType: 'text/html', description: 'The page.' },
      },
      handle: async () => ({
        status: 200,
        body: docsPage('studio-mail API'),
        headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
      }),
    },
    {
      doc: {
        key: 'GET /docs/{file}',
        tag,
        access: 'public',
        summary: `A file of the reference page: ${Object.keys(DOCS_FILES).join(', ')}.`,
        responseType: { contentType: 'text/javascript', description: 'The file (JavaScript or CSS).' },
      },
      handle: async (req) => {
        const file = await read(req.params.file ?? '');
        return {
          status: 200,
          body: file.body,
          // The files change only with the package version, which changes the deployment.
          headers: { 'content-type': file.contentType, 'cache-control': 'public, max-age=3600' },
        };
      },
    },
  ];
}
