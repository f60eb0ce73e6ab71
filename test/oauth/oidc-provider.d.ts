// oidc-provider ships no type declarations (and @types/oidc-provider is not installed): the test
// authorization server uses it untyped.
declare module 'oidc-provider';
