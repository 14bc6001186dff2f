/**
 * What differs between the backends is declared in `capabilities`, and every port method is answered by both:
 * callers read the flags, never probe for a method.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openArtifactStore } from '../../src/artifacts/open-artifact-store.js';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`capabilities of ${backend.name}`, () => {
    afterAll(() => backend.cleanup());
    const shared = backend.name === 'postgres';

    it('declares wake-ups across processes, elections and artifact tables only where the backend has them', async () => {
      const store = await backend.create();
      expect(store.capabilities).toEqual({ listenNotify: shared, concurrentWriters: shared, leaderElection: shared, artifactTables: shared });
    });

    it('answers readiness, leadership and wake-up calls on every backend', async () => {
      const store = await backend.create();
      await expect(store.ping()).resolves.toBeUndefined();
      expect(store.isUnreachable()).toBe(false);
      const leading: boolean[] = [];
      const resign = await store.campaign((l) => leading.push(l));
      // Alone on its store (a fresh database on PostgreSQL), this process leads after the first try.
      expect(leading[0]).toBe(true);
      await resign();
      const unsubscribe = await store.subscribeWakeups(() => undefined);
      await unsubscribe();
    });

    it('keeps artifacts in the store itself exactly when it declares artifact tables', async () => {
      const store = await backend.create();
      if (shared) {
        const artifacts = openArtifactStore('store', { store });
        const ref = await artifacts.put('in the database');
        expect((await openArtifactStore(undefined, { store }).get(ref)).toString()).toBe('in the database');
      } else {
        expect(() => openArtifactStore('store', { store })).toThrow(/keeps no artifacts in its database/);
      }
    });
  });
}
