import { vi } from 'vitest';

/** Runs a CLI command in-process and returns its exit code with what it wrote to stdout and stderr. */
export async function captureOutput(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((err += String(chunk)), true));
  try {
    return { code: await fn(), out, err };
  } finally {
    vi.restoreAllMocks();
  }
}
