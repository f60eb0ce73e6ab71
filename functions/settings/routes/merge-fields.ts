import { mergeFieldList } from '#lib/domain/merge-fields';
import { mergeFieldListView } from '#lib/settings/schemas';
import { ok, type RouteModule } from './common.ts';

export const mergeFieldRoutes: RouteModule = () => [
  {
    doc: {
      key: 'GET /merge-fields',
      tag: 'Reference data',
      access: 'user',
      summary: 'List every merge field with what it holds and an example.',
      description:
        'Form letters, signatures and typed emails may use these; saving or sending one with any other `{{…}}` is a 400 that names the nearest known field.',
      response: mergeFieldListView,
    },
    handle: async () => ok({ items: mergeFieldList() }),
  },
];
