import { requireAdmin } from '#lib/http/api';
import {
  createRef,
  deleteRef,
  getRef,
  listRefs,
  patchRef,
  type RefSpec,
  refSpecs,
  replaceRef,
} from '#lib/settings/reference';
import { refPatchOf } from '#lib/settings/schemas';
import {
  body,
  noContent,
  ok,
  page,
  pageParams,
  patchDescription,
  type Route,
  type RouteModule,
  tagged,
} from './common.ts';

function crud(ctx: Parameters<RouteModule>[0], spec: RefSpec): Route[] {
  const base = `/${spec.path}`;
  const tag = 'Reference data';
  const a = /^[aeiou]/.test(spec.label) ? 'an' : 'a';
  return [
    {
      doc: {
        key: `GET ${base}`,
        tag,
        access: 'user',
        summary: spec.paged
          ? `List ${spec.label}s, a page at a time (by last name).`
          : `List every ${spec.label}.`,
        response: spec.list,
        query: spec.paged ? pageParams : undefined,
      },
      handle: async (req) => ok(await listRefs(ctx, spec, req.caller.studioId, page(req))),
    },
    {
      doc: {
        key: `POST ${base}`,
        tag,
        access: 'admin',
        summary: `Create ${a} ${spec.label}.`,
        request: spec.input,
        response: spec.view,
        status: 201,
      },
      handle: async (req) => {
        requireAdmin(req.caller);
        return ok(await createRef(ctx, spec, req.caller.studioId, body(spec.input, req)), 201);
      },
    },
    {
      doc: {
        key: `GET ${base}/{id}`,
        tag,
        access: 'user',
        summary: `Read one ${spec.label}.`,
        response: spec.view,
      },
      handle: async (req) => tagged(await getRef(ctx, spec, req.caller.studioId, req.params.id ?? '')),
    },
    {
      doc: {
        key: `PUT ${base}/{id}`,
        tag,
        access: 'admin',
        summary: `Replace ${a} ${spec.label}; send \`version\` to refuse the save if someone changed it since.`,
        request: spec.input,
        response: spec.view,
      },
      handle: async (req) => {
        requireAdmin(req.caller);
        return ok(
          await replaceRef(ctx, spec, req.caller.studioId, req.params.id ?? '', body(spec.input, req)),
        );
      },
    },
    {
      doc: {
        key: `PATCH ${base}/{id}`,
        tag,
        access: 'admin',
        summary: `Change some fields of ${a} ${spec.label}, keeping the rest (JSON Merge Patch).`,
        description: patchDescription(),
        request: refPatchOf(spec.input, spec.label),
        response: spec.view,
      },
      handle: async (req) => {
        requireAdmin(req.caller);
        return tagged(await patchRef(ctx, spec, req.caller.studioId, req.params.id ?? '', req));
      },
    },
    {
      doc: {
        key: `DELETE ${base}/{id}`,
        tag,
        access: 'admin',
        summary: `Delete ${a} ${spec.label}; 409 names whatever still uses it.`,
        status: 204,
        errors: [409],
      },
      handle: async (req) => {
        requireAdmin(req.caller);
        await deleteRef(ctx, spec, req.caller.studioId, req.params.id ?? '');
        return noContent();
      },
    },
  ];
}

export const referenceRoutes: RouteModule = (ctx) => refSpecs.flatMap((spec) => crud(ctx, spec));
