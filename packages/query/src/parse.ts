import type { Condition, FilterNode, Operator, Query, Selection, SortKey, ValuePrefix } from './ast.js'
import { decodePiece } from './decode.js'
import { QueryError } from './errors.js'
import {
  parseLimitArguments,
  parseSelectArguments,
  parseSelectParameter,
  parseSortList,
} from './parse-functions.js'

export interface ParseOptions {
  /**
   * Names of `name=value` parameters the caller reads itself (`accept`, `access_token`): skipped at
   * the top level instead of becoming conditions.
   */
  ignore?: Iterable<string>
  /**
   * The text is the query part of an MQTT topic filter: a bare `+` or `#` is an error
   * (`QUERY_TOPIC_WILDCARD`); they are written `%2B` and `%23`, like in a URL.
   */
  topic?: boolean
}

/** `=xx=` operator names; also the names a chained condition starts with (`&lt=200`). */
const OPERATOR_WORDS: ReadonlyMap<string, Operator> = new Map([
  ['lt', 'lt'],
  ['le', 'le'],
  ['gt', 'gt'],
  ['ge', 'ge'],
  ['ne', 'ne'],
  ['ct', 'ct'],
  ['sw', 'sw'],
  ['ew', 'ew'],
])
/** Today's list parameters: `name=value` with one `=` at the top level is the parameter, not a condition. */
const PARAMETERS: ReadonlySet<string> = new Set(['limit', 'offset', 'select', 'sort', 'after'])
const PREFIX = /^(number|boolean|string|date):/
/** Characters that end an attribute name. */
const NAME_END = new Set(['=', '!', '(', ')', '[', ']', '&', '|', ',', '{', '}'])

type Item =
  | { kind: 'condition'; node: Condition; word?: Operator }
  | { kind: 'group'; node: FilterNode }
  | { kind: 'hoisted'; position: number }

interface Join {
  char: '&' | '|'
  position: number
}

interface Hoisted {
  select?: Selection
  limit?: number
  offset?: number
  sort?: SortKey[]
  after?: string
}

/**
 * Parses HarperDB's URL query language: FIQL conditions joined by `&` / `|` with `( )` and `[ ]`
 * groups, the functions `select()`, `limit()` and `sort()`, and the parameters `limit=`, `offset=`,
 * `select=`, `sort=` and `after=`. `text` is the raw query part (after `?`, still percent-encoded):
 * structure is read before decoding, so `%26`, `%7C`, `%28`, `%3D` are literal characters in names
 * and values. Throws {@link QueryError} naming the position and the condition.
 *
 * @example
 * const query = parseQuery('breed=Lab&age=gt=3&select(name,age)&limit(10)')
 * query.filter // { type: 'and', children: [breed eq 'Lab', age gt '3'] }
 */
export function parseQuery(text: string, options: ParseOptions = {}): Query {
  if (options.topic) {
    const wildcard = /[+#]/.exec(text)
    if (wildcard) {
      throw new QueryError(
        'QUERY_TOPIC_WILDCARD',
        `a bare '${wildcard[0]}' in a topic filter's query is a wildcard; write ${wildcard[0] === '+' ? '%2B' : '%23'}`,
        wildcard.index,
        termAround(text, wildcard.index),
      )
    }
  }
  const parser = new Parser(text, new Set(options.ignore ?? []))
  return parser.parse()
}

/** The term (between `&`/`|`) around `position`, for error messages. */
function termAround(text: string, position: number): string {
  let start = position
  while (start > 0 && text[start - 1] !== '&' && text[start - 1] !== '|') start--
  let end = position
  while (end < text.length && text[end] !== '&' && text[end] !== '|') end++
  return text.slice(start, end)
}

class Parser {
  #i = 0
  readonly #hoisted: Hoisted = {}

  constructor(
    readonly src: string,
    readonly ignore: ReadonlySet<string>,
  ) {
    if (src.startsWith('?')) this.#i = 1
  }

  parse(): Query {
    const filter = this.#sequence(undefined, this.#i)
    const query: { -readonly [K in keyof Query]: Query[K] } = { text: this.src, ...this.#hoisted }
    if (filter) query.filter = filter
    return query
  }

  #fail(code: QueryError['code'], detail: string, position: number, condition?: string): never {
    throw new QueryError(code, detail, position, condition ?? termAround(this.src, position))
  }

  /** Terms joined by `&` or `|` up to `closer` (or the end at the top level). */
  #sequence(closer: ')' | ']' | undefined, open: number): FilterNode | undefined {
    const src = this.src
    const top = closer === undefined
    const items: Item[] = []
    const joins: Join[] = []
    for (;;) {
      // Empty terms (`a=1&&b=2`, a trailing `&`) are allowed at the top level, as in any URL.
      if (top && (joins.length === 0 || joins.at(-1)!.char === '&')) while (src[this.#i] === '&') this.#i++
      const end = this.#i >= src.length
      if (end || src[this.#i] === closer) {
        if (end && !top) this.#fail('QUERY_SYNTAX', `'${src[open]}' is never closed`, open)
        if (joins.length === items.length && items.length > 0 && !(top && joins.at(-1)!.char === '&')) {
          this.#fail(
            'QUERY_SYNTAX',
            `expected a condition after '${joins.at(-1)!.char}'`,
            joins.at(-1)!.position,
            src.slice(open, end ? this.#i : this.#i + 1),
          )
        }
        if (!top && items.length === 0) this.#fail('QUERY_SYNTAX', 'empty group', open)
        break
      }
      const item = this.#term(top)
      if (item.kind === 'condition' && item.word !== undefined) this.#chain(item, items.at(-1), joins.at(-1))
      items.push(item)
      if (this.#i >= src.length || src[this.#i] === closer) continue
      const c = src[this.#i]
      if (c === '&' || c === '|') {
        joins.push({ char: c, position: this.#i })
        this.#i++
        continue
      }
      this.#fail('QUERY_SYNTAX', `unexpected '${c}'`, this.#i)
    }
    return this.#combine(items, joins, open, top ? this.#i : this.#i + 1)
  }

  /**
   * A term named like an operator (`lt=200`) right after a condition is the upper half of a chained
   * range; only `gt`/`ge` followed by `lt`/`le`, joined by `&`, is one.
   */
  #chain(item: Item & { kind: 'condition' }, previous: Item | undefined, join: Join | undefined): void {
    if (previous?.kind !== 'condition') {
      item.word = undefined // an attribute that happens to be called `lt`
      return
    }
    const node = item.node
    const lower = previous.node
    if (
      join?.char !== '&' ||
      lower.chained ||
      (lower.operator !== 'gt' && lower.operator !== 'ge') ||
      lower.strict ||
      (item.word !== 'lt' && item.word !== 'le')
    ) {
      this.#fail(
        'QUERY_INVALID_CHAIN',
        'only a lower bound (=gt=, =ge=) chained with & to an upper bound (lt=, le=) is a chained condition',
        node.position,
        node.text,
      )
    }
    item.node = { ...node, path: lower.path, operator: item.word, chained: true }
  }

  /** Hoists functions and parameters out, checks that `&` and `|` are not mixed, builds the node. */
  #combine(items: Item[], joins: Join[], open: number, end: number): FilterNode | undefined {
    const filters: FilterNode[] = []
    let kind: Join | undefined
    let pending: Join | undefined
    for (let k = 0; k < items.length; k++) {
      const item = items[k]!
      const before = joins[k - 1]
      if (item.kind === 'hoisted') {
        for (const join of [before, joins[k]]) {
          if (join && join.char !== '&') {
            this.#fail(
              'QUERY_MISPLACED',
              'a query function or parameter is joined with &, not |',
              join.position,
              this.src.slice(open, end),
            )
          }
        }
        if (filters.length > 0 && pending === undefined && before) pending = before
        continue
      }
      const join = pending ?? before
      pending = undefined
      if (filters.length > 0 && join) {
        if (kind === undefined) kind = join
        else if (kind.char !== join.char) {
          this.#fail(
            'QUERY_MIXED_OPERATORS',
            `'${join.char}' after '${kind.char}' at one level is ambiguous; group with ( ) or [ ]`,
            join.position,
            this.src.slice(open, end),
          )
        }
      }
      filters.push(item.node)
    }
    if (filters.length === 0) return undefined
    if (filters.length === 1) return filters[0]
    const type = kind!.char === '&' ? 'and' : 'or'
    const children: FilterNode[] = []
    for (const f of filters) {
      if (f.type === type) children.push(...f.children)
      else children.push(f)
    }
    return { type, children, position: open }
  }

  #term(top: boolean): Item {
    const src = this.src
    const start = this.#i
    const c = src[start]
    if (c === '(' || c === '[') {
      this.#i++
      const node = this.#sequence(c === '(' ? ')' : ']', start)
      this.#i++ // the closer
      return { kind: 'group', node: node! }
    }
    let j = start
    while (j < src.length && !NAME_END.has(src[j]!)) j++
    const rawName = src.slice(start, j)
    if (src[j] === '(') return this.#function(rawName, start, j, top)
    if (rawName === '') {
      let end = start + 1
      while (end < src.length && src[end] !== '&' && src[end] !== '|') end++
      const found = src[j] ?? 'the end'
      this.#fail('QUERY_SYNTAX', `expected an attribute name, found '${found}'`, start, src.slice(start, end))
    }
    return this.#condition(rawName, start, j, top)
  }

  #condition(rawName: string, start: number, at: number, top: boolean): Item {
    const src = this.src
    let operator: Operator = 'eq'
    let strict = false
    let plain = false
    let wildcard = false
    if (src.startsWith('===', at)) [strict, at] = [true, at + 3]
    else if (src.startsWith('!==', at)) [operator, strict, at] = ['ne', true, at + 3]
    else if (src.startsWith('==', at)) [wildcard, at] = [true, at + 2]
    else if (src.startsWith('!=', at)) [operator, at] = ['ne', at + 2]
    else if (src[at] === '=') {
      const word = /^=([a-z]+)=/.exec(src.slice(at, at + 16))
      if (word) {
        const named = OPERATOR_WORDS.get(word[1]!)
        if (!named) this.#fail('QUERY_UNKNOWN_OPERATOR', `unknown operator '=${word[1]}='`, at)
        operator = named
        at += word[0].length
      } else [plain, at] = [true, at + 1]
    } else {
      this.#fail(
        'QUERY_SYNTAX',
        `expected an operator (=, ==, !=, ===, !==, =gt=, ...) after '${rawName}'`,
        at,
        src.slice(start, at),
      )
    }
    const valueStart = at
    let depth = 0
    for (; at < src.length; at++) {
      const ch = src[at]
      if (ch === '&' || ch === '|' || ch === ']') break
      if (ch === '(') depth++
      else if (ch === ')') {
        if (depth === 0) break
        depth--
      }
    }
    this.#i = at
    const text = src.slice(start, at)
    let raw = src.slice(valueStart, at)
    if (plain && top && PARAMETERS.has(rawName)) {
      this.#parameter(rawName, raw, valueStart, text, start)
      return { kind: 'hoisted', position: start }
    }
    const path = this.#path(rawName, start, text)
    if (plain && top && path.length === 1 && this.ignore.has(path[0]!))
      return { kind: 'hoisted', position: start }
    if (plain && PARAMETERS.has(rawName)) {
      this.#fail(
        'QUERY_MISPLACED',
        `'${rawName}=' is a list parameter; it belongs at the top level`,
        start,
        text,
      )
    }
    // `==value*` is starts-with; a literal trailing star is written %2A.
    if (wildcard && raw.endsWith('*')) [operator, raw] = ['sw', raw.slice(0, -1)]
    let prefix: ValuePrefix | undefined
    let offset = valueStart
    const typed = strict ? null : PREFIX.exec(raw)
    if (typed) {
      prefix = typed[1] as ValuePrefix
      raw = raw.slice(typed[0].length)
      offset += typed[0].length
    }
    const value = decodePiece(raw, offset, text)
    const node: Condition = prefix
      ? { type: 'condition', path, operator, strict, value, prefix, text, position: start }
      : { type: 'condition', path, operator, strict, value, text, position: start }
    const word = plain && path.length === 1 ? OPERATOR_WORDS.get(rawName) : undefined
    return word === undefined ? { kind: 'condition', node } : { kind: 'condition', node, word }
  }

  /** `brand.name` → `['brand', 'name']`; each segment percent-decoded (so `%2E` is a literal dot). */
  #path(rawName: string, start: number, text: string): string[] {
    const path: string[] = []
    let offset = start
    for (const segment of rawName.split('.')) {
      if (segment === '') this.#fail('QUERY_SYNTAX', 'empty attribute name in a dotted path', offset, text)
      path.push(decodePiece(segment, offset, text))
      offset += segment.length + 1
    }
    return path
  }

  #parameter(name: string, raw: string, valueStart: number, text: string, start: number): void {
    const hoisted = this.#hoisted
    const duplicate = (key: keyof Hoisted) => {
      if (hoisted[key] !== undefined) this.#fail('QUERY_DUPLICATE', `${key} is given twice`, start, text)
    }
    switch (name) {
      case 'limit':
      case 'offset': {
        duplicate(name)
        const value = decodePiece(raw, valueStart, text).trim()
        if (!/^\d+$/.test(value)) {
          this.#fail('QUERY_INVALID_VALUE', `${name} must be a non-negative integer`, valueStart, text)
        }
        hoisted[name] = Number(value)
        return
      }
      case 'after':
        duplicate('after')
        hoisted.after = decodePiece(raw, valueStart, text)
        return
      case 'select': {
        duplicate('select')
        const selection = parseSelectParameter(raw, valueStart, text)
        if (selection) hoisted.select = selection
        return
      }
      case 'sort': {
        duplicate('sort')
        const keys = parseSortList(raw, valueStart, text, true)
        if (keys.length > 0) hoisted.sort = keys
        return
      }
    }
  }

  /** `select(...)`, `limit(...)`, `sort(...)`: hoisted out of the filter, top level only. */
  #function(name: string, start: number, open: number, top: boolean): Item {
    const src = this.src
    let depth = 0
    let close = -1
    for (let k = open; k < src.length; k++) {
      const ch = src[k]
      if (ch === '(') depth++
      else if (ch === ')' && --depth === 0) {
        close = k
        break
      }
    }
    if (close < 0) this.#fail('QUERY_SYNTAX', `'(' of ${name}() is never closed`, open)
    const text = src.slice(start, close + 1)
    this.#i = close + 1
    if (!top) this.#fail('QUERY_MISPLACED', `${name}() belongs at the top level, outside groups`, start, text)
    const args = src.slice(open + 1, close)
    const hoisted = this.#hoisted
    const duplicate = (key: keyof Hoisted) => {
      if (hoisted[key] !== undefined) this.#fail('QUERY_DUPLICATE', `${key} is given twice`, start, text)
    }
    switch (name) {
      case 'select':
        duplicate('select')
        hoisted.select = parseSelectArguments(args, open + 1, text)
        break
      case 'limit': {
        duplicate('limit')
        const { limit, offset } = parseLimitArguments(args, open + 1, text)
        hoisted.limit = limit
        if (offset !== undefined) {
          duplicate('offset')
          hoisted.offset = offset
        }
        break
      }
      case 'sort': {
        duplicate('sort')
        const keys = parseSortList(args, open + 1, text, false)
        if (keys.length === 0)
          this.#fail('QUERY_UNKNOWN_FUNCTION', 'sort() needs at least one attribute', start, text)
        hoisted.sort = keys
        break
      }
      default:
        this.#fail(
          'QUERY_UNKNOWN_FUNCTION',
          `unknown function ${name === '' ? '' : `'${name}'`}(); known: select(), limit(), sort()`,
          start,
          text,
        )
    }
    return { kind: 'hoisted', position: start }
  }
}
