/** True when `e` is Node's "cannot find module/package" error for `pkg` (ESM or CommonJS). */
export function isModuleNotFound(e: unknown, pkg: string): boolean {
  const err = e as { code?: string; message?: string };
  return (
    (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') &&
    typeof err.message === 'string' &&
    err.message.includes(pkg)
  );
}
