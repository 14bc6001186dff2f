import { afterEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/server/auth.js';
import { backends } from '../support/backends.js';
import { startHarness, type Harness } from './server-harness.js';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

for (const backend of backends()) {
  describe(`API tokens over HTTP on ${backend.name}`, () => {
    let h: Harness | undefined;
    afterEach(async () => {
      await h?.close();
      h = undefined;
    });

    it('lists tokens without their secret and refuses a revoked token at once with TOKEN_REVOKED', async () => {
      h = await startHarness({}, { auth: 'on', worker: false, backend });
      const store = h.engine.store;
      const admin = await createApiToken(store, 'admin', 'ops');
      const viewer = await createApiToken(store, 'viewer', 'dashboard', Date.now(), Date.now() + 3_600_000);
      // A request first, so the server has the viewer's lookup cached when it is revoked.
      expect((await h.app.inject({ url: '/api/runs', headers: bearer(viewer.token) })).statusCode).toBe(200);

      const listed = await h.app.inject({ url: '/api/tokens', headers: bearer(admin.token) });
      expect(listed.statusCode).toBe(200);
      const tokens = listed.json().tokens as Array<Record<string, unknown>>;
      expect(tokens).toEqual([
        { id: admin.record.id, name: 'ops', role: 'admin', created_at: expect.any(Number), expires_at: null, revoked_at: null },
        { id: viewer.record.id, name: 'dashboard', role: 'viewer', created_at: expect.any(Number), expires_at: viewer.record.expiresAt, revoked_at: null },
      ]);
      expect(listed.body).not.toContain(viewer.token);
      expect(listed.body).not.toContain(viewer.record.hash);
      expect((await h.app.inject({ url: '/api/tokens', headers: bearer(viewer.token) })).json().error.code).toBe('FORBIDDEN');
      expect((await h.app.inject({ method: 'DELETE', url: `/api/tokens/${admin.record.id}`, headers: bearer(viewer.token) })).statusCode).toBe(403);

      const revoked = await h.app.inject({ method: 'DELETE', url: `/api/tokens/${viewer.record.id}`, headers: bearer(admin.token) });
      expect(revoked.statusCode).toBe(200);
      expect(revoked.json()).toMatchObject({ id: viewer.record.id, revoked_at: expect.any(Number) });
      const refused = await h.app.inject({ url: '/api/runs', headers: bearer(viewer.token) });
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error).toMatchObject({ code: 'TOKEN_REVOKED', message: expect.stringContaining('revoked') });
      // Revoking again keeps the first time; unknown ids and malformed ids are told apart.
      const again = await h.app.inject({ method: 'DELETE', url: `/api/tokens/${viewer.record.id}`, headers: bearer(admin.token) });
      expect(again.json().revoked_at).toBe(revoked.json().revoked_at);
      const missing = await h.app.inject({ method: 'DELETE', url: '/api/tokens/999999', headers: bearer(admin.token) });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe('TOKEN_NOT_FOUND');
      expect((await h.app.inject({ method: 'DELETE', url: '/api/tokens/abc', headers: bearer(admin.token) })).statusCode).toBe(400);
      expect((await h.app.inject({ url: '/api/runs', headers: bearer(admin.token) })).statusCode).toBe(200);
    });

    it('refuses a token revoked in the store by another process within a second', async () => {
      h = await startHarness({}, { auth: 'on', worker: false, backend });
      const store = h.engine.store;
      const viewer = await createApiToken(store, 'viewer', null);
      expect((await h.app.inject({ url: '/api/runs', headers: bearer(viewer.token) })).statusCode).toBe(200);
      // As `sluice token revoke` does: straight in the store, which this server's cache does not hear about.
      await store.revokeToken!(viewer.record.id, Date.now());
      // The lookup cache lasts 1 s; the deadline only has to be finite on a loaded machine.
      const deadline = Date.now() + 15_000;
      let code: string | undefined;
      while (Date.now() < deadline && code === undefined) {
        const res = await h.app.inject({ url: '/api/runs', headers: bearer(viewer.token) });
        if (res.statusCode === 401) code = res.json().error.code;
        else await new Promise((r) => setTimeout(r, 50));
      }
      expect(code).toBe('TOKEN_REVOKED');
    });
  });
}
