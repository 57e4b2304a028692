import { PlugmqError } from './errors.js';
import type { StandardSchemaV1 } from './standard-schema.js';
import type {
  ConsumeOptions,
  HandlerContext,
  Message,
  PublishOptions,
  QueueManager,
  Subscription,
} from './types.js';
import { assertMessageType } from './validation.js';

/** Message types and the schema of each one's body: `{ 'order.placed': z.object({ … }) }`. */
export type CatalogSchemas = { readonly [type: string]: StandardSchemaV1 };

/** What a publish of `K` takes: the schema's input, or anything for a type the catalog lacks. */
export type CatalogInput<S extends CatalogSchemas, K extends string> = K extends keyof S
  ? StandardSchemaV1.InferInput<S[K]>
  : unknown;

/**
 * What a handler of `K` receives: the schema's output (after its transforms and defaults);
 * `unknown` for a type the catalog lacks. A type only known as `string` gets `any`, as the plain
 * `consume<T>` leaves it open: that keeps a `CatalogQueueManager` assignable to `QueueManager`.
 */
export type CatalogBody<S extends CatalogSchemas, K extends string> = K extends keyof S
  ? StandardSchemaV1.InferOutput<S[K]>
  : string extends K
    ? // biome-ignore lint/suspicious/noExplicitAny: see above; a literal type never gets here.
      any
    : unknown;

/** A delivery of one of the types `K`; `message.type` narrows `message.body`. */
export type CatalogMessage<S extends CatalogSchemas, K extends string> = K extends unknown
  ? Message<CatalogBody<S, K>> & { readonly type: K }
  : never;

/** A handler of the types `K`. */
export type CatalogHandler<S extends CatalogSchemas, K extends string> = (
  message: CatalogMessage<S, K>,
  context: HandlerContext,
) => void | Promise<void>;

/**
 * One item of a typed `publishBatch`: the body is checked against the item's own type. Without
 * `K`, the items of the declared types only (their literal bodies keep their literal types).
 */
export type CatalogBatchItem<
  S extends CatalogSchemas,
  K extends string = keyof S & string,
> = K extends keyof S
  ? { type: K; body: StandardSchemaV1.InferInput<S[K]>; options?: PublishOptions }
  : { type: K; body: unknown; options?: PublishOptions };

/** The catalog-typed methods of a `CatalogQueueManager`. */
export interface CatalogMethods<S extends CatalogSchemas> {
  publish<K extends string>(type: K, body: CatalogInput<S, K>, options?: PublishOptions): Promise<string>;
  publishBatch(items: CatalogBatchItem<S>[]): Promise<string[]>;
  /** A batch that mixes in types the catalog lacks: compiles, bodies checked at run time only. */
  publishBatch<K extends string>(items: CatalogBatchItem<S, K>[]): Promise<string[]>;
  consume<K extends string>(
    types: K | K[],
    handler: CatalogHandler<S, K>,
    options: ConsumeOptions,
  ): Promise<Subscription>;
}

/**
 * What `catalog.attach(queue)` returns: the same manager object, with `publish`, `publishBatch`
 * and `consume` typed from the catalog (a wrong body for a declared type does not compile). It
 * is still assignable to `QueueManager`. Types the catalog lacks work with an `unknown` body;
 * `queue.consume<T>(…)` on the plain reference names their body type as before.
 */
export type CatalogQueueManager<S extends CatalogSchemas> = Omit<
  QueueManager,
  'publish' | 'publishBatch' | 'consume'
> &
  CatalogMethods<S>;

/** What a manager needs of a catalog: its schemas, and the brand `defineCatalog` sets. */
export type CatalogLike = Pick<Catalog, 'schemas' | 'types'>;

/** A manager that can hold a catalog: every manager built with `defineTransportDriver`. */
export interface CatalogHolder {
  useCatalog(catalog: CatalogLike): void;
}

const BRAND = Symbol.for('plugmq.Catalog');

export interface Catalog<S extends CatalogSchemas = CatalogSchemas> {
  readonly schemas: Readonly<S>;
  /** The declared message types. */
  readonly types: readonly (keyof S & string)[];
  /**
   * Makes `queue` check every publish and delivery of the declared types (from now on, whichever
   * reference to the manager is used) and returns it typed from the catalog. Idempotent.
   */
  attach(queue: QueueManager): CatalogQueueManager<S>;
}

export function isCatalog(value: unknown): value is CatalogLike {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const props = (value as Partial<StandardSchemaV1> | null)?.['~standard'];
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof props === 'object' &&
    props !== null &&
    props.version === 1 &&
    typeof props.validate === 'function'
  );
}

/**
 * Declares message types once, each with a Standard Schema for its body (zod, valibot, arktype, …):
 *
 *   const catalog = defineCatalog({ 'order.placed': z.object({ orderId: z.string() }) });
 *   const queue = catalog.attach(await createQueueManager({ driver: 'memory' }));
 */
export function defineCatalog<const S extends CatalogSchemas>(schemas: S): Catalog<S> {
  if (typeof schemas !== 'object' || schemas === null || Array.isArray(schemas)) {
    throw new PlugmqError(
      'INVALID_ARGUMENT',
      "defineCatalog needs an object of message type to schema, e.g. { 'order.placed': z.object({ … }) }",
    );
  }
  for (const [type, schema] of Object.entries(schemas)) {
    assertMessageType(type, 'catalog type');
    if (!isStandardSchema(schema)) {
      throw new PlugmqError(
        'INVALID_ARGUMENT',
        `catalog type ${type}: the schema must implement Standard Schema v1 (a '~standard' property with version 1 and validate), as zod >= 3.24, valibot >= 1 and arktype schemas do`,
      );
    }
  }
  const frozen = Object.freeze({ ...schemas });
  const catalog: Catalog<S> = {
    schemas: frozen,
    types: Object.freeze(Object.keys(frozen)),
    attach(queue) {
      const holder = queue as Partial<CatalogHolder> | null;
      if (typeof holder?.useCatalog !== 'function') {
        throw new PlugmqError(
          'UNSUPPORTED',
          `the ${queue?.driver} manager cannot hold a catalog (no useCatalog); build the driver with defineTransportDriver`,
        );
      }
      holder.useCatalog(catalog);
      return queue as CatalogQueueManager<S>;
    },
  };
  Object.defineProperty(catalog, BRAND, { value: true });
  return Object.freeze(catalog);
}

/** The schemas a manager checks against, one per type; a type may not get a second, different one. */
export class SchemaRegistry {
  private readonly byType = new Map<string, StandardSchemaV1>();

  get size(): number {
    return this.byType.size;
  }

  get(type: string): StandardSchemaV1 | undefined {
    return this.byType.get(type);
  }

  add(catalog: CatalogLike): void {
    if (!isCatalog(catalog)) {
      throw new PlugmqError('INVALID_ARGUMENT', 'useCatalog needs a catalog made by defineCatalog()');
    }
    const entries = Object.entries(catalog.schemas);
    for (const [type, schema] of entries) {
      const known = this.byType.get(type);
      if (known !== undefined && known !== schema) {
        throw new PlugmqError(
          'INVALID_ARGUMENT',
          `message type ${type} already has a different schema on this manager; declare each type in one catalog`,
        );
      }
    }
    for (const [type, schema] of entries) this.byType.set(type, schema);
  }
}

const MAX_ISSUES_SHOWN = 3;

function pathText(root: string, path: StandardSchemaV1.Issue['path']): string {
  let text = root;
  for (const segment of path ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    if (typeof key === 'number') text += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) text += `.${key}`;
    else text += `[${typeof key === 'symbol' ? key.toString() : JSON.stringify(key)}]`;
  }
  return text;
}

/** `body.total: Expected number; body.items[0].sku: Required (and 2 more)`: every issue named by its path. */
export function describeIssues(issues: readonly StandardSchemaV1.Issue[], root = 'body'): string {
  const shown = issues
    .slice(0, MAX_ISSUES_SHOWN)
    .map((issue) => `${pathText(root, issue.path)}: ${issue.message}`)
    .join('; ');
  const more = issues.length - MAX_ISSUES_SHOWN;
  return more > 0 ? `${shown} (and ${more} more)` : shown;
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * Runs `schema` on `body`; `onResult` gets the result. Stays synchronous for a synchronous
 * validator (no promise per message); a validator that throws or rejects propagates.
 */
export function runSchema<R>(
  schema: StandardSchemaV1,
  body: unknown,
  onResult: (result: StandardSchemaV1.Result<unknown>) => R,
): R | Promise<R> {
  const result = schema['~standard'].validate(body);
  return isThenable(result) ? result.then(onResult) : onResult(result);
}

/** Publish side: an invalid body is INVALID_ARGUMENT naming each failing path; `root` names the body's field. */
export function checkPublishBody(
  schema: StandardSchemaV1,
  type: string,
  body: unknown,
  root: string,
): void | Promise<void> {
  const onResult = (result: StandardSchemaV1.Result<unknown>): void => {
    if (result.issues) {
      throw new PlugmqError(
        'INVALID_ARGUMENT',
        `${root} does not match the schema of ${type}: ${describeIssues(result.issues, root)}`,
        { cause: result.issues },
      );
    }
  };
  const schemaThrew = (error: unknown): never => {
    if (error instanceof PlugmqError) throw error;
    throw new PlugmqError('INVALID_ARGUMENT', `the schema of ${type} threw while checking ${root}`, {
      cause: error,
    });
  };
  try {
    const checked = runSchema(schema, body, onResult);
    return checked === undefined ? undefined : checked.catch(schemaThrew);
  } catch (error) {
    return schemaThrew(error);
  }
}

/** Consume side: the error a delivery that fails its schema is dead-lettered with. */
export function invalidMessage(type: string, issues: readonly StandardSchemaV1.Issue[]): PlugmqError {
  return new PlugmqError(
    'INVALID_MESSAGE',
    `the body does not match the schema of ${type}: ${describeIssues(issues)}`,
    { cause: issues },
  );
}
