import { createRequire } from 'node:module';

// Ajv, yaml and JSONata are CommonJS packages of many files each; together they cost more to load than the rest of
// Sluice. Loaded with `require` at first use (synchronous, as their callers are), so `import('sluice')` stays fast
// and a program pays only for what it uses.
const require = createRequire(import.meta.url);

type AjvPackage = typeof import('ajv');
type Ajv2020Package = typeof import('ajv/dist/2020.js');
type YamlPackage = typeof import('yaml');
type Jsonata = typeof import('jsonata');

let ajv: AjvPackage | undefined;
let ajv2020: Ajv2020Package | undefined;
let yaml: YamlPackage | undefined;
let jsonata: Jsonata | undefined;

/** The `ajv` package (JSON Schema draft-07), loaded at first call. */
export function ajvPackage(): AjvPackage {
  return (ajv ??= require('ajv') as AjvPackage);
}

/** Ajv's JSON Schema 2020-12 build, loaded at first call. */
export function ajv2020Package(): Ajv2020Package {
  return (ajv2020 ??= require('ajv/dist/2020.js') as Ajv2020Package);
}

/** The `yaml` package, loaded at first call. */
export function yamlPackage(): YamlPackage {
  return (yaml ??= require('yaml') as YamlPackage);
}

/** The `jsonata` function, loaded at first call. */
export function jsonataPackage(): Jsonata {
  return (jsonata ??= require('jsonata') as Jsonata);
}
