// Text as the API takes it: the field schemas live in the API contract (@labtrace/protocols/api); here, the check
// of the whole parsed body for what a field's schema does not cover (keys, free-form JSON).
import type { RequestHandler } from 'express';
import { formatPath, LabtraceError } from '@labtrace/protocols';
import { isWellFormed } from '@labtrace/protocols/api';

export { isWellFormed, line, optionalLine, paragraph, textProblem, wellFormed } from '@labtrace/protocols/api';

/**
 * Refuses a JSON body holding a string or a key that is not well-formed Unicode, naming its path (400). Walks
 * without recursion: a body nested thousands deep must not overflow the stack.
 */
export function wellFormedBody(): RequestHandler {
  return (req, _res, next) => {
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object') return next();
    // each item knows its parent, so that a path is built only for the one refused
    interface Item {
      value: unknown;
      key: string | number | undefined;
      parent: Item | undefined;
    }
    const pathOf = (item: Item): (string | number)[] => {
      const path: (string | number)[] = [];
      for (let i: Item | undefined = item; i?.key !== undefined; i = i.parent) path.push(i.key);
      return path.reverse();
    };
    const stack: Item[] = [{ value: body, key: undefined, parent: undefined }];
    for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
      const { value } = item;
      if (typeof value === 'string') {
        if (!isWellFormed(value))
          return next(
            new LabtraceError('E_BAD_REQUEST', `body: ${formatPath(pathOf(item))}: contains a lone UTF-16 surrogate (not well-formed Unicode)`),
          );
      } else if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i] as unknown, key: i, parent: item });
      } else if (value !== null && typeof value === 'object') {
        for (const [key, v] of Object.entries(value).reverse()) {
          if (!isWellFormed(key))
            return next(
              new LabtraceError(
                'E_BAD_REQUEST',
                `body: ${formatPath(pathOf(item))}: a key contains a lone UTF-16 surrogate (not well-formed Unicode)`,
              ),
            );
          stack.push({ value: v, key, parent: item });
        }
      }
    }
    next();
  };
}
