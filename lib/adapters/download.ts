/** What both blob stores send with a download: the file name offered to the browser. */

/**
 * `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII fallback with quotes and
 * control characters replaced, and the exact name percent-encoded. Without a name: `attachment`.
 */
export function contentDisposition(filename: string | undefined): string {
  if (!filename) return 'attachment';
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
