/**
 * How an error message names a value it refuses: with its type, so that `'2'` and `2` read
 * differently (`got the string "2"`, not `got 2`).
 *
 * @module
 */

/** Longest text of a string (or key list) quoted in a message, in characters. */
const MAX_QUOTED_CHARS = 40;

/**
 * @internal A short description of `value` for an error message, naming its type: `2`, `NaN`,
 * `the string "2"`, `the bigint 2n`, `true`, `null`, `undefined`, `a function`, `a symbol`,
 * `an array`, `an object`, `a Map` (objects by their constructor's name). Never throws, never
 * calls the value's own methods (a hostile `toString` or getter is not run).
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'string':
      return `the string ${quote(value)}`;
    case 'bigint':
      return `the bigint ${value}n`;
    case 'boolean':
      return String(value);
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return 'an array';
      return objectName(value as object);
  }
}

function quote(text: string): string {
  const cut = text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}…` : text;
  return JSON.stringify(cut);
}

/** `an object` for a plain object, else `a <constructor name>`, read without running getters. */
function objectName(value: object): string {
  let name = '';
  try {
    // A Proxy's traps may throw: then it is just an object.
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== null && proto !== Object.prototype) {
      const ctor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
      if (typeof ctor === 'function') name = ctor.name;
    }
  } catch {
    name = '';
  }
  if (name === '' || name === 'Object') return 'an object';
  return `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
}
