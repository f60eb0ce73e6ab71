import { docsAssets, docsPage } from '#lib/app/docs';
import { mergeFieldList } from '#lib/domain/merge-fields';
import { ok, type SettingsHandlers } from './common.ts';

/** The API reference page and the swagger-ui files it loads, public like the document itself. */
export const docsHandlers = (
  read = docsAssets(),
): Pick<SettingsHandlers, 'GET /docs' | 'GET /docs/{file}'> => ({
  'GET /docs': async () => ({
    status: 200,
    body: docsPage('studio-mail API'),
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
  }),
  'GET /docs/{file}': async (req) => {
    const file = await read(req.params.file ?? '');
    return {
      status: 200,
      body: file.body,
      // The files change only with the package version, which comes with a new deployment.
      headers: { 'content-type': file.contentType, 'cache-control': 'public, max-age=3600' },
    };
  },
});

export const mergeFieldHandlers = (): Pick<SettingsHandlers, 'GET /merge-fields'> => ({
  'GET /merge-fields': async () => ok({ items: mergeFieldList() }),
});
