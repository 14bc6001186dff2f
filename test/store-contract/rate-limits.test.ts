import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';

for (const backend of backends()) {
  describe(`shared rate limits on ${backend.name}`, () => {
    afterAll(() => backend.cleanup());

    it('grants requests within the per-minute budget and says how long to wait past it', async () => {
      const store = await backend.create();
      try {
        const minute = 29_000_000 * 60_000;
        const at = minute + 15_000;
        expect(await store.takeRate('provider-a', { rpm: 2 }, 10, at)).toBe(0);
        expect(await store.takeRate('provider-a', { rpm: 2 }, 10, at + 1)).toBe(0);
        expect(await store.takeRate('provider-a', { rpm: 2 }, 10, at + 2)).toBe(60_000 - 15_002);
        // Another key has its own budget; the next minute renews this one.
        expect(await store.takeRate('provider-b', { rpm: 2 }, 10, at + 3)).toBe(0);
        expect(await store.takeRate('provider-a', { rpm: 2 }, 10, minute + 60_000)).toBe(0);
      } finally {
        await store.close();
      }
    });

    it('counts tokens, corrected by what the server reported', async () => {
      const store = await backend.create();
      try {
        const at = 29_000_100 * 60_000;
        expect(await store.takeRate('k', { tpm: 1000 }, 600, at)).toBe(0);
        expect(await store.takeRate('k', { tpm: 1000 }, 600, at + 1)).toBeGreaterThan(0);
        await store.settleRate('k', at, 100 - 600);
        expect(await store.takeRate('k', { tpm: 1000 }, 600, at + 2)).toBe(0);
        // A request bigger than the whole budget still goes, alone, into an empty window.
        expect(await store.takeRate('big', { tpm: 100 }, 5000, at)).toBe(0);
      } finally {
        await store.close();
      }
    });
  });
}
