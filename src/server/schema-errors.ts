/** One error of a JSON Schema check, as Ajv reports it (Fastify passes them on as `error.validation`). */
export interface SchemaError {
  keyword: string;
  /** JSON Pointer of the offending value, e.g. `/steps/0`; '' for the whole part. */
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/**
 * A sentence per schema error that names the offending property and where it is: "body has unknown property
 * 'foo'", "body.input is missing required property 'title'", "query parameter 'limit' must be <= 1000".
 * `context` is the request part Fastify checked (`body`, `querystring`, `params`, `headers`). Undefined when
 * there is no error to describe.
 */
export function describeSchemaErrors(errors: readonly SchemaError[], context: string): string | undefined {
  if (errors.length === 0) return undefined;
  return errors.map((e) => describe(e, context)).join('; ');
}

function describe(e: SchemaError, context: string): string {
  const path = pointerSegments(e.instancePath);
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where(context, path, 'container')} has unknown ${noun(context, path)} '${String(e.params['additionalProperty'])}'`;
    case 'required':
      return `${where(context, path, 'container')} is missing required ${noun(context, path)} '${String(e.params['missingProperty'])}'`;
    case 'enum':
      return `${where(context, path, 'value')} must be one of ${(e.params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${where(context, path, 'value')} ${e.message ?? `fails the ${e.keyword} check`}`;
  }
}

const PART: Record<string, { name: string; parameter: string }> = {
  body: { name: 'body', parameter: 'property' },
  querystring: { name: 'query string', parameter: 'query parameter' },
  params: { name: 'URL', parameter: 'URL parameter' },
  headers: { name: 'headers', parameter: 'header' },
};

/** What a missing or unknown key is called: a property inside a body, a parameter at the top of the others. */
function noun(context: string, path: string[]): string {
  return path.length === 0 && context !== 'body' ? (PART[context]?.parameter ?? 'property') : 'property';
}

/**
 * Where the offending value is: `body`, `body.steps[0]`, or for the top of a query string or URL the
 * parameter itself (`query parameter 'limit'`). `container` is for a missing or unknown key: its object.
 */
function where(context: string, path: string[], kind: 'container' | 'value'): string {
  const part = PART[context] ?? { name: context, parameter: 'parameter' };
  if (context !== 'body' && path.length > 0) {
    const [first, ...rest] = path;
    return `${part.parameter} '${first}'${formatPath(rest)}`;
  }
  if (path.length === 0 && kind === 'container') return context === 'body' ? 'body' : `the ${part.name}`;
  return `${part.name}${formatPath(path)}`;
}

function formatPath(path: string[]): string {
  return path.map((p) => (/^\d+$/.test(p) ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}
