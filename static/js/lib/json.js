// JSON read and written without going through JavaScript numbers: an event's payload may hold
// integers beyond 2^53 (12345678901234567890123), which JSON.parse rounds. Numbers stay as their
// exact source text in a JsonNumber; everything else is plain JSON values.

export class JsonNumber {
  constructor(text) {
    this.text = text;
  }

  toString() {
    return this.text;
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

/** JSON.parse, with every number a JsonNumber holding its exact text. */
export function parseExact(text) {
  let i = 0;
  const fail = () => {
    throw new SyntaxError(`bad JSON at character ${i}`);
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i += 1;
  };
  const match = (re) => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) fail();
    i = re.lastIndex;
    return m[0];
  };
  const value = () => {
    space();
    const c = text[i];
    if (c === "{") {
      i += 1;
      const out = {};
      space();
      if (text[i] === "}") { i += 1; return out; }
      for (;;) {
        space();
        const key = JSON.parse(match(STRING));
        space();
        if (text[i] !== ":") fail();
        i += 1;
        out[key] = value();
        space();
        if (text[i] === ",") { i += 1; continue; }
        if (text[i] === "}") { i += 1; return out; }
        fail();
      }
    }
    if (c === "[") {
      i += 1;
      const out = [];
      space();
      if (text[i] === "]") { i += 1; return out; }
      for (;;) {
        out.push(value());
        space();
        if (text[i] === ",") { i += 1; continue; }
        if (text[i] === "]") { i += 1; return out; }
        fail();
      }
    }
    if (c === '"') return JSON.parse(match(STRING));
    if (text.startsWith("true", i)) { i += 4; return true; }
    if (text.startsWith("false", i)) { i += 5; return false; }
    if (text.startsWith("null", i)) { i += 4; return null; }
    return new JsonNumber(match(NUMBER));
  };
  const out = value();
  space();
  if (i !== text.length) fail();
  return out;
}

/** JSON.stringify(value, null, indent) that writes a JsonNumber's text as it came. */
export function stringifyExact(value, indent = 2, depth = 0) {
  if (value instanceof JsonNumber) return value.text;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const nl = indent ? "\n" : "", colon = indent ? ": " : ":";
  const pad = nl + " ".repeat(indent * (depth + 1)), end = nl + " ".repeat(indent * depth);
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[${value.map((v) => pad + stringifyExact(v, indent, depth + 1)).join(",")}${end}]`;
  }
  const keys = Object.keys(value);
  if (!keys.length) return "{}";
  return `{${keys.map((k) => `${pad}${JSON.stringify(k)}${colon}${stringifyExact(value[k], indent, depth + 1)}`).join(",")}${end}}`;
}
