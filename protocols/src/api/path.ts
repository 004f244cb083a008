// Route paths with their parameters filled in; no schemas here, so a page can import it without zod.

/** A path with its parameters filled in, each percent-encoded: `/api/runs/:id` + {id: 'r 1'} = `/api/runs/r%201`. */
export function fillPath(path: string, params: Record<string, unknown> = {}): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    const value = params[name];
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new Error(`path ${path}: parameter ${name} is missing or not a scalar`);
    }
    return encodeURIComponent(String(value));
  });
}
