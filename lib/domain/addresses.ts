/**
 * Email addresses as mail carries them, internationalised ones too (RFC 6531, SMTPUTF8): a UTF-8
 * local part and a domain in Unicode or its `xn--` form. One form to compare and look up by.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * The form an address is compared and looked up by: NFC (the same é typed two ways is one
 * address), lower case, and the domain in Unicode (`xn--bcher-kva.de` is `bücher.de`).
 */
export function addressKey(address: string): string {
  const a = address.trim().normalize('NFC');
  const at = a.lastIndexOf('@');
  if (at < 0) return a.toLowerCase();
  const domain = a.slice(at + 1).toLowerCase();
  return `${a.slice(0, at).toLowerCase()}@${domainToUnicode(domain) || domain}`;
}

/** The address with its domain in Unicode (`XN--BCHER-KVA.DE` → `bücher.de`); the local part as written. */
export function withUnicodeDomain(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address;
  const domain = address.slice(at + 1);
  return `${address.slice(0, at)}@${domainToUnicode(domain.toLowerCase()) || domain}`;
}

/** Characters a local part may hold unquoted (RFC 5322 atext, and any non-ASCII, RFC 6531). */
const LOCAL_PART = /^[\p{L}\p{M}\p{N}!#$%&'*+/=?^_`{|}~-]+(?:\.[\p{L}\p{M}\p{N}!#$%&'*+/=?^_`{|}~-]+)*$/u;
const ASCII_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether `address` is a mailbox mail can be delivered to: ASCII or internationalised. */
export function isMailbox(address: string): boolean {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at < 1 || Buffer.byteLength(a) > 254) return false;
  const local = a.slice(0, at);
  if (Buffer.byteLength(local) > 64 || !LOCAL_PART.test(local)) return false;
  const ascii = domainToASCII(a.slice(at + 1));
  const labels = ascii.split('.');
  return (
    ascii.length > 0 && ascii.length <= 253 && labels.length > 1 && labels.every((l) => ASCII_LABEL.test(l))
  );
}
