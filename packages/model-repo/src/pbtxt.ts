import protobuf from "protobufjs";

/**
 * Protobuf text format (the language of Triton's config.pbtxt), read and
 * written through a message schema (a protobufjs Type): field kinds, enums,
 * repeated fields and maps come from the schema, so an unknown field or a
 * wrong value is an error naming the file and line, as protoc's parser does.
 *
 * Values come back as plain objects keyed by the .proto field names: enums as
 * their names, 64-bit integers as numbers (strings past 2^53), repeated
 * fields as arrays, maps as objects.
 */

export class PbtxtError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    message: string,
  ) {
    super(`${file}:${line}:${column}: ${message}`);
    this.name = "PbtxtError";
  }
}

type TokKind = "ident" | "number" | "string" | "punct" | "eof";
interface Token {
  kind: TokKind;
  text: string;
  value?: string;
  line: number;
  col: number;
}

function tokenize(src: string, file: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const err = (msg: string): never => {
    throw new PbtxtError(file, line, i - lineStart + 1, msg);
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "\n") {
      line++;
      i++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    const col = i - lineStart + 1;
    if ("{}[]<>:,;".includes(c)) {
      out.push({ kind: "punct", text: c, line, col });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const quote = c;
      i++;
      const bytes: number[] = [];
      while (true) {
        if (i >= src.length || src[i] === "\n") err("unterminated string");
        const ch = src[i];
        if (ch === quote) {
          i++;
          break;
        }
        if (ch === "\\") {
          const e = src[i + 1];
          i += 2;
          const simple: Record<string, number> = { n: 10, t: 9, r: 13, "\\": 92, "'": 39, '"': 34, a: 7, b: 8, f: 12, v: 11, "?": 63 };
          if (e in simple) bytes.push(simple[e]);
          else if (e === "x") {
            const m = /^[0-9a-fA-F]{1,2}/.exec(src.slice(i));
            if (!m) err("bad \\x escape");
            bytes.push(parseInt(m![0], 16));
            i += m![0].length;
          } else if (e >= "0" && e <= "7") {
            const m = /^[0-7]{0,2}/.exec(src.slice(i))!;
            bytes.push(parseInt(e + m[0], 8) & 0xff);
            i += m[0].length;
          } else err(`unknown escape \\${e}`);
          continue;
        }
        const cp = src.codePointAt(i)!;
        const s = String.fromCodePoint(cp);
        bytes.push(...Buffer.from(s, "utf8"));
        i += s.length;
      }
      const value = Buffer.from(bytes).toString("utf8");
      // Adjacent string literals concatenate.
      const prev = out[out.length - 1];
      if (prev && prev.kind === "string") prev.value += value;
      else out.push({ kind: "string", text: "", value, line, col });
      continue;
    }
    const num = /^-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?|inf(?:inity)?|nan)/i.exec(src.slice(i));
    if (num && (c === "-" || /[0-9.]/.test(c))) {
      out.push({ kind: "number", text: num[0], line, col });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(src.slice(i));
    if (id) {
      out.push({ kind: "ident", text: id[0], line, col });
      i += id[0].length;
      continue;
    }
    err(`unexpected character '${c}'`);
  }
  out.push({ kind: "eof", text: "<end of file>", line, col: i - lineStart + 1 });
  return out;
}

class Parser {
  private pos = 0;
  constructor(
    private readonly toks: Token[],
    private readonly file: string,
  ) {}

  private peek(): Token {
    return this.toks[this.pos];
  }
  private next(): Token {
    return this.toks[this.pos++];
  }
  private fail(t: Token, msg: string): never {
    throw new PbtxtError(this.file, t.line, t.col, msg);
  }
  private accept(p: string): boolean {
    const t = this.peek();
    if (t.kind === "punct" && t.text === p) {
      this.pos++;
      return true;
    }
    return false;
  }
  private expect(p: string): void {
    const t = this.next();
    if (!(t.kind === "punct" && t.text === p)) this.fail(t, `expected '${p}', found '${describe(t)}'`);
  }

  parseMessage(type: protobuf.Type, close: string | null): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    const seen = new Set<string>();
    while (true) {
      const t = this.peek();
      if (close === null && t.kind === "eof") return obj;
      if (close !== null && t.kind === "punct" && t.text === close) {
        this.pos++;
        return obj;
      }
      if (t.kind === "eof") this.fail(t, `expected '${close}' to close ${type.name}`);
      if (t.kind !== "ident") this.fail(t, `expected a field name of ${type.name}, found '${describe(t)}'`);
      this.pos++;
      const field = type.fields[t.text];
      if (!field) this.fail(t, `message ${type.name} has no field named "${t.text}"`);
      field.resolve();
      if (!field.repeated && !field.map && seen.has(field.name)) {
        this.fail(t, `field "${field.name}" of ${type.name} is set more than once`);
      }
      seen.add(field.name);
      this.parseField(obj, field, t);
      if (!this.accept(",")) this.accept(";");
    }
  }

  private parseField(obj: Record<string, unknown>, field: protobuf.Field, at: Token): void {
    const isMessage = field.resolvedType instanceof protobuf.Type || field.map;
    if (isMessage) {
      const colon = this.accept(":");
      const readOne = (): unknown => {
        const open = this.next();
        if (open.kind === "punct" && (open.text === "{" || open.text === "<")) {
          if (field.map) return this.parseMapEntry(field as unknown as protobuf.MapField, open.text === "{" ? "}" : ">");
          return this.parseMessage(field.resolvedType as protobuf.Type, open.text === "{" ? "}" : ">");
        }
        return this.fail(open, `expected '{' to start ${field.name}, found '${describe(open)}'`);
      };
      if ((field.repeated || field.map) && this.peek().kind === "punct" && this.peek().text === "[") {
        this.pos++;
        const items: unknown[] = [];
        if (!this.accept("]")) {
          do items.push(readOne());
          while (this.accept(","));
          this.expect("]");
        }
        this.store(obj, field, items);
      } else {
        void colon;
        this.store(obj, field, [readOne()]);
      }
      return;
    }
    if (!this.accept(":")) this.fail(this.peek(), `expected ':' after field "${field.name}"`);
    if (field.repeated && this.accept("[")) {
      const items: unknown[] = [];
      if (!this.accept("]")) {
        do items.push(this.scalar(field));
        while (this.accept(","));
        this.expect("]");
      }
      this.store(obj, field, items);
      return;
    }
    if (!field.repeated && this.peek().kind === "punct" && this.peek().text === "[") {
      this.fail(this.peek(), `field "${field.name}" is not repeated; a list is not allowed (near ${at.text})`);
    }
    this.store(obj, field, [this.scalar(field)]);
  }

  private parseMapEntry(field: protobuf.MapField, close: string): [string, unknown] {
    let key: unknown;
    let value: unknown;
    while (!this.accept(close)) {
      const t = this.next();
      if (t.kind === "ident" && t.text === "key") {
        this.expect(":");
        key = this.scalarOf(field.keyType, undefined, field.name + ".key");
      } else if (t.kind === "ident" && t.text === "value") {
        if (field.resolvedType instanceof protobuf.Type) {
          this.accept(":");
          const open = this.next();
          if (!(open.kind === "punct" && (open.text === "{" || open.text === "<"))) {
            this.fail(open, `expected '{' to start ${field.name}.value`);
          }
          value = this.parseMessage(field.resolvedType, open.text === "{" ? "}" : ">");
        } else {
          this.expect(":");
          value = this.scalarOf(field.type, field.resolvedType as protobuf.Enum | null, field.name + ".value");
        }
      } else this.fail(t, `map entry of "${field.name}" has only key and value, found '${describe(t)}'`);
      if (!this.accept(",")) this.accept(";");
    }
    if (key === undefined) this.fail(this.toks[this.pos - 1], `map entry of "${field.name}" without a key`);
    if (value === undefined) {
      value = field.resolvedType instanceof protobuf.Type ? {} : defaultScalar(field.type);
    }
    return [String(key), value];
  }

  private store(obj: Record<string, unknown>, field: protobuf.Field, items: unknown[]): void {
    if (field.map) {
      const m = (obj[field.name] ??= {}) as Record<string, unknown>;
      for (const [k, v] of items as [string, unknown][]) m[k] = v;
    } else if (field.repeated) {
      ((obj[field.name] ??= []) as unknown[]).push(...items);
    } else obj[field.name] = items[0];
  }

  private scalar(field: protobuf.Field): unknown {
    return this.scalarOf(field.type, field.resolvedType as protobuf.Enum | null, field.name);
  }

  private scalarOf(type: string, enumType: protobuf.Enum | null | undefined, name: string): unknown {
    const t = this.next();
    if (enumType instanceof protobuf.Enum) {
      if (t.kind === "ident") {
        if (!(t.text in enumType.values)) {
          this.fail(t, `"${t.text}" is not a value of enum ${enumType.name} (field "${name}"; expected one of ${Object.keys(enumType.values).join(", ")})`);
        }
        return t.text;
      }
      if (t.kind === "number" && /^-?\d+$/.test(t.text)) {
        const n = Number(t.text);
        const nm = enumType.valuesById[n];
        if (nm === undefined) this.fail(t, `${n} is not a value of enum ${enumType.name} (field "${name}")`);
        return nm;
      }
      this.fail(t, `field "${name}" expects an enum ${enumType.name} value, found '${describe(t)}'`);
    }
    switch (type) {
      case "string":
        if (t.kind !== "string") this.fail(t, `field "${name}" expects a string, found '${describe(t)}'`);
        return t.value;
      case "bytes":
        if (t.kind !== "string") this.fail(t, `field "${name}" expects bytes (a quoted string), found '${describe(t)}'`);
        return Buffer.from(t.value!, "utf8");
      case "bool":
        if (t.kind === "ident" && (t.text === "true" || t.text === "True" || t.text === "t")) return true;
        if (t.kind === "ident" && (t.text === "false" || t.text === "False" || t.text === "f")) return false;
        if (t.kind === "number" && (t.text === "1" || t.text === "0")) return t.text === "1";
        return this.fail(t, `field "${name}" expects true or false, found '${describe(t)}'`);
      case "float":
      case "double": {
        if (t.kind === "ident" && /^-?(inf|infinity|nan)$/i.test(t.text)) return parseFloatText(t.text);
        if (t.kind !== "number") this.fail(t, `field "${name}" expects a number, found '${describe(t)}'`);
        const v = parseFloatText(t.text);
        if (Number.isNaN(v) && !/nan/i.test(t.text)) this.fail(t, `field "${name}": bad number '${t.text}'`);
        return v;
      }
      default: {
        // integer kinds
        if (t.kind !== "number" || !/^-?(0[xX][0-9a-fA-F]+|\d+)$/.test(t.text)) {
          this.fail(t, `field "${name}" expects an integer (${type}), found '${describe(t)}'`);
        }
        const neg = t.text.startsWith("-");
        const big = neg ? -BigInt(t.text.slice(1)) : BigInt(t.text);
        const [lo, hi] = INT_RANGES[type] ?? [-(2n ** 63n), 2n ** 64n - 1n];
        if (big < lo || big > hi) this.fail(t, `field "${name}": ${t.text} is out of range for ${type}`);
        return Number.isSafeInteger(Number(big)) ? Number(big) : big.toString();
      }
    }
  }
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

function parseFloatText(s: string): number {
  const t = s.replace(/[fF]$/, "").toLowerCase();
  if (/^-?inf(inity)?$/.test(t)) return t.startsWith("-") ? -Infinity : Infinity;
  if (/^-?nan$/.test(t)) return NaN;
  if (/^-?0x/.test(t)) return Number.parseInt(t, 16);
  return Number(t);
}

function defaultScalar(type: string): unknown {
  if (type === "string") return "";
  if (type === "bool") return false;
  return 0;
}

function describe(t: Token): string {
  return t.kind === "string" ? JSON.stringify(t.value) : t.text;
}

/** Parses text-format `src` as a message of `type`. `file` names the source in errors. */
export function parseTextFormat(src: string, type: protobuf.Type, file = "<text>"): Record<string, unknown> {
  const toks = tokenize(src, file);
  return new Parser(toks, file).parseMessage(type, null);
}

// ---------------------------------------------------------------- writer

function quote(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, "utf8")) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += "\\\\";
    else if (b === 0x0a) out += "\\n";
    else if (b === 0x09) out += "\\t";
    else if (b === 0x0d) out += "\\r";
    else if (b < 0x20 || b === 0x7f) out += "\\" + b.toString(8).padStart(3, "0");
    else out += String.fromCharCode(b);
  }
  // Re-decode multi-byte UTF-8 sequences that were appended as Latin-1 chars.
  return Buffer.from(out + '"', "latin1").toString("utf8");
}

function formatScalar(v: unknown, field: { type: string; resolvedType: unknown; name: string }, path: string): string {
  const enumType = field.resolvedType;
  if (enumType instanceof protobuf.Enum) {
    if (typeof v === "number") {
      const nm = enumType.valuesById[v];
      if (nm === undefined) throw new Error(`${path}: ${v} is not a value of enum ${enumType.name}`);
      return nm;
    }
    if (typeof v !== "string" || !(v in enumType.values)) {
      throw new Error(`${path}: ${String(v)} is not a value of enum ${enumType.name}`);
    }
    return v;
  }
  switch (field.type) {
    case "string":
      if (typeof v !== "string") throw new Error(`${path}: expected a string, got ${typeof v}`);
      return quote(v);
    case "bytes":
      return quote(Buffer.from(v as Uint8Array).toString("utf8"));
    case "bool":
      if (typeof v !== "boolean") throw new Error(`${path}: expected a boolean, got ${typeof v}`);
      return v ? "true" : "false";
    case "float":
    case "double": {
      const n = Number(v);
      if (typeof v !== "number" && typeof v !== "string") throw new Error(`${path}: expected a number`);
      if (Number.isNaN(n)) return "nan";
      if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
      return String(n);
    }
    default: {
      const s = typeof v === "bigint" ? v.toString() : typeof v === "object" && v !== null ? String(v) : String(v);
      if (!/^-?\d+$/.test(s)) throw new Error(`${path}: expected an integer, got ${s}`);
      return s;
    }
  }
}

function writeMessage(obj: Record<string, unknown>, type: protobuf.Type, indent: string, path: string): string[] {
  const lines: string[] = [];
  for (const key of Object.keys(obj)) {
    if (!type.fields[key]) throw new Error(`${path}: message ${type.name} has no field named "${key}"`);
  }
  for (const field of type.fieldsArray) {
    field.resolve();
    const v = obj[field.name];
    if (v === undefined || v === null) continue;
    const fpath = `${path}.${field.name}`;
    if (field.map) {
      const entries = Object.entries(v as Record<string, unknown>);
      for (const [k, val] of entries) {
        lines.push(`${indent}${field.name} {`);
        lines.push(`${indent}  key: ${formatScalar(k, { type: (field as unknown as protobuf.MapField).keyType, resolvedType: null, name: "key" }, fpath)}`);
        if (field.resolvedType instanceof protobuf.Type) {
          lines.push(`${indent}  value {`);
          lines.push(...writeMessage(val as Record<string, unknown>, field.resolvedType, indent + "    ", `${fpath}[${k}]`));
          lines.push(`${indent}  }`);
        } else {
          lines.push(`${indent}  value: ${formatScalar(val, field, `${fpath}[${k}]`)}`);
        }
        lines.push(`${indent}}`);
      }
      continue;
    }
    if (field.resolvedType instanceof protobuf.Type) {
      const items = field.repeated ? (v as Record<string, unknown>[]) : [v as Record<string, unknown>];
      if (field.repeated && !Array.isArray(v)) throw new Error(`${fpath}: expected a list`);
      if (field.repeated) {
        if (items.length === 0) continue;
        lines.push(`${indent}${field.name} [`);
        items.forEach((item, i) => {
          lines.push(`${indent}  {`);
          lines.push(...writeMessage(item, field.resolvedType as protobuf.Type, indent + "    ", `${fpath}[${i}]`));
          lines.push(`${indent}  }${i < items.length - 1 ? "," : ""}`);
        });
        lines.push(`${indent}]`);
      } else {
        lines.push(`${indent}${field.name} {`);
        lines.push(...writeMessage(items[0], field.resolvedType, indent + "  ", fpath));
        lines.push(`${indent}}`);
      }
      continue;
    }
    if (field.repeated) {
      if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw new Error(`${fpath}: expected a list`);
      const arr = Array.from(v as ArrayLike<unknown>);
      if (arr.length === 0) continue;
      lines.push(`${indent}${field.name}: [ ${arr.map((x, i) => formatScalar(x, field, `${fpath}[${i}]`)).join(", ")} ]`);
    } else {
      lines.push(`${indent}${field.name}: ${formatScalar(v, field, fpath)}`);
    }
  }
  return lines;
}

/** Writes `obj` (field names as in the .proto) as text format, fields in declaration order. */
export function formatTextFormat(obj: Record<string, unknown>, type: protobuf.Type): string {
  return writeMessage(obj, type, "", type.name).join("\n") + "\n";
}
