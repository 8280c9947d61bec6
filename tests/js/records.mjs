// The bytes of docs/protocol.md §2, §4 and §6, written from the document alone: canonical
// msgpack (a codec of our own, because a stock JS msgpack encoder writes 1.0 as an integer),
// peer ids from Ed25519 keys, record ids and record signatures.

import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import { base58btc } from 'multiformats/bases/base58'

export const MAX_NESTING = 16
const UTF8 = new TextEncoder()
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true })

// A float64 value: JS numbers cannot tell 1.0 from 1, the wire can (§4 "Floats").
export class F64 {
  constructor (value) { this.value = value }
}
export const f64 = (value) => new F64(value)

export class WireError extends Error {}

// ---- encoding (§4) ---------------------------------------------------------------------------

export function encode (value) {
  const out = []
  write(out, value, 0)
  return Buffer.concat(out)
}

function header (out, small, smallMax, codes, length) {
  if (length <= smallMax) { out.push(Buffer.from([small | length])); return }
  const [c8, c16, c32] = codes
  if (c8 !== null && length <= 0xff) { out.push(Buffer.from([c8, length])); return }
  if (length <= 0xffff) { const b = Buffer.alloc(3); b[0] = c16; b.writeUInt16BE(length, 1); out.push(b); return }
  const b = Buffer.alloc(5); b[0] = c32; b.writeUInt32BE(length, 1); out.push(b)
}

function writeInteger (out, n) {
  const big = BigInt(n)
  if (big >= 0n) {
    if (big <= 0x7fn) out.push(Buffer.from([Number(big)]))
    else if (big <= 0xffn) out.push(Buffer.from([0xcc, Number(big)]))
    else if (big <= 0xffffn) { const b = Buffer.alloc(3); b[0] = 0xcd; b.writeUInt16BE(Number(big), 1); out.push(b) }
    else if (big <= 0xffffffffn) { const b = Buffer.alloc(5); b[0] = 0xce; b.writeUInt32BE(Number(big), 1); out.push(b) }
    else if (big <= 0xffffffffffffffffn) { const b = Buffer.alloc(9); b[0] = 0xcf; b.writeBigUInt64BE(big, 1); out.push(b) }
    else throw new WireError(`integer ${big} does not fit uint64`)
  } else {
    if (big >= -32n) out.push(Buffer.from([0x100 + Number(big)]))
    else if (big >= -0x80n) { const b = Buffer.alloc(2); b[0] = 0xd0; b.writeInt8(Number(big), 1); out.push(b) }
    else if (big >= -0x8000n) { const b = Buffer.alloc(3); b[0] = 0xd1; b.writeInt16BE(Number(big), 1); out.push(b) }
    else if (big >= -0x80000000n) { const b = Buffer.alloc(5); b[0] = 0xd2; b.writeInt32BE(Number(big), 1); out.push(b) }
    else if (big >= -0x8000000000000000n) { const b = Buffer.alloc(9); b[0] = 0xd3; b.writeBigInt64BE(big, 1); out.push(b) }
    else throw new WireError(`integer ${big} does not fit int64`)
  }
}

function write (out, value, depth) {
  if (value === null) out.push(Buffer.from([0xc0]))
  else if (value === false) out.push(Buffer.from([0xc2]))
  else if (value === true) out.push(Buffer.from([0xc3]))
  else if (value instanceof F64) {
    const b = Buffer.alloc(9); b[0] = 0xcb; b.writeDoubleBE(value.value, 1); out.push(b)
  } else if (typeof value === 'bigint') writeInteger(out, value)
  else if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new WireError(`${value} is not an integer: wrap floats in f64()`)
    writeInteger(out, value)
  } else if (typeof value === 'string') {
    const bytes = UTF8.encode(value)
    header(out, 0xa0, 31, [0xd9, 0xda, 0xdb], bytes.length)
    out.push(Buffer.from(bytes))
  } else if (value instanceof Uint8Array) {
    header(out, 0, -1, [0xc4, 0xc5, 0xc6], value.length)
    out.push(Buffer.from(value))
  } else if (Array.isArray(value)) {
    if (depth >= MAX_NESTING) throw new WireError('nested too deep')
    header(out, 0x90, 15, [null, 0xdc, 0xdd], value.length)
    for (const item of value) write(out, item, depth + 1)
  } else if (typeof value === 'object') {
    if (depth >= MAX_NESTING) throw new WireError('nested too deep')
    // Keys sorted by their UTF-8 bytes as unsigned bytes, not by UTF-16 units (§4 "Maps").
    const keys = Object.keys(value).map((k) => [Buffer.from(UTF8.encode(k)), k])
    keys.sort((a, b) => Buffer.compare(a[0], b[0]))
    header(out, 0x80, 15, [null, 0xde, 0xdf], keys.length)
    for (const [, k] of keys) { write(out, k, depth + 1); write(out, value[k], depth + 1) }
  } else throw new WireError(`cannot encode ${typeof value}`)
}

// ---- decoding ---------------------------------------------------------------------------------

// One msgpack value with nothing after it; floats come back as F64, maps as null-prototype
// objects. Anything outside the canonical subset's types (ext, float32) is refused here; the
// caller re-encodes and compares bytes for the rest (§3 step 4).
export function decode (bytes) {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const state = { buf, at: 0 }
  const value = read(state, 0)
  if (state.at !== buf.length) throw new WireError('trailing bytes')
  return value
}

function take (state, n) {
  if (state.at + n > state.buf.length) throw new WireError('truncated')
  const slice = state.buf.subarray(state.at, state.at + n)
  state.at += n
  return slice
}

function uint (state, n) {
  const b = take(state, n)
  if (n === 1) return b[0]
  if (n === 2) return b.readUInt16BE(0)
  if (n === 4) return b.readUInt32BE(0)
  const big = b.readBigUInt64BE(0)
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big
}

function read (state, depth) {
  const code = take(state, 1)[0]
  if (code <= 0x7f) return code
  if (code >= 0xe0) return code - 0x100
  if ((code & 0xe0) === 0xa0) return str(state, code & 0x1f)
  if ((code & 0xf0) === 0x90) return array(state, code & 0x0f, depth)
  if ((code & 0xf0) === 0x80) return map(state, code & 0x0f, depth)
  switch (code) {
    case 0xc0: return null
    case 0xc2: return false
    case 0xc3: return true
    case 0xc4: return new Uint8Array(take(state, uint(state, 1)))
    case 0xc5: return new Uint8Array(take(state, uint(state, 2)))
    case 0xc6: return new Uint8Array(take(state, uint(state, 4)))
    case 0xcb: return f64(take(state, 8).readDoubleBE(0))
    case 0xcc: return uint(state, 1)
    case 0xcd: return uint(state, 2)
    case 0xce: return uint(state, 4)
    case 0xcf: return uint(state, 8)
    case 0xd0: return take(state, 1).readInt8(0)
    case 0xd1: return take(state, 2).readInt16BE(0)
    case 0xd2: return take(state, 4).readInt32BE(0)
    case 0xd3: {
      const big = take(state, 8).readBigInt64BE(0)
      return big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big
    }
    case 0xd9: return str(state, uint(state, 1))
    case 0xda: return str(state, uint(state, 2))
    case 0xdb: return str(state, uint(state, 4))
    case 0xdc: return array(state, uint(state, 2), depth)
    case 0xdd: return array(state, uint(state, 4), depth)
    case 0xde: return map(state, uint(state, 2), depth)
    case 0xdf: return map(state, uint(state, 4), depth)
    default: throw new WireError(`msgpack type 0x${code.toString(16)} is not in the canonical form`)
  }
}

function str (state, n) {
  try { return UTF8_STRICT.decode(take(state, n)) } catch (e) {
    if (e instanceof WireError) throw e
    throw new WireError('invalid UTF-8')
  }
}

function array (state, n, depth) {
  if (depth >= MAX_NESTING) throw new WireError('nested too deep')
  const items = []
  for (let i = 0; i < n; i++) items.push(read(state, depth + 1))
  return items
}

function map (state, n, depth) {
  if (depth >= MAX_NESTING) throw new WireError('nested too deep')
  const out = Object.create(null)
  for (let i = 0; i < n; i++) {
    const key = read(state, depth + 1)
    if (typeof key !== 'string') throw new WireError('a map key is not a string')
    if (key in out) throw new WireError(`duplicate key ${key}`)
    out[key] = read(state, depth + 1)
  }
  return out
}

// Decodes and requires the bytes to be exactly the canonical encoding of what they hold.
export function decodeCanonical (bytes) {
  const value = decode(bytes)
  if (Buffer.compare(encode(value), Buffer.from(bytes)) !== 0) throw new WireError('not canonically encoded')
  return value
}

// ---- identity (§2) ----------------------------------------------------------------------------

const ED25519_PUBLIC_PREFIX = Buffer.from('08011220', 'hex')
const IDENTITY_MULTIHASH = Buffer.from('0024', 'hex')
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

export function peerIdOf (publicKey) {
  const multihash = Buffer.concat([IDENTITY_MULTIHASH, ED25519_PUBLIC_PREFIX, publicKey])
  return base58btc.encode(multihash).slice(1) // no multibase prefix ('z')
}

export function publicKeyOf (peerId) {
  let bytes
  try { bytes = Buffer.from(base58btc.decode('z' + peerId)) } catch { return null }
  const prefix = Buffer.concat([IDENTITY_MULTIHASH, ED25519_PUBLIC_PREFIX])
  if (bytes.length !== 38 || Buffer.compare(bytes.subarray(0, 6), prefix) !== 0) return null
  return bytes.subarray(6)
}

export class Signer {
  constructor (seed) {
    this.key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' })
    const spki = createPublicKey(this.key).export({ format: 'der', type: 'spki' })
    this.publicKey = spki.subarray(SPKI_ED25519.length)
    this.peerId = peerIdOf(this.publicKey)
  }

  // §6: author = our peer id, sign the canonical bytes (the map without `signature`).
  seal (fields) {
    const unsigned = { ...fields, author: this.peerId }
    delete unsigned.signature
    const canonical = encode(unsigned)
    return { ...unsigned, signature: sign(null, canonical, this.key) }
  }
}

// ---- records (§6) -----------------------------------------------------------------------------

export const KINDS = new Set(['problem', 'experiment', 'verification', 'pattern', 'hypothesis', 'verdict'])
// §5 "Derived records": these kinds are valid unsigned exactly when their author is DERIVED_AUTHOR
// and their signature is empty; every node recomputes them rather than trusting them.
export const DERIVED_AUTHOR = 'derived'
export const DERIVED_KINDS = new Set(['pattern', 'hypothesis', 'verdict'])

export function canonicalBytes (record) {
  const unsigned = { ...record }
  delete unsigned.signature
  return encode(unsigned)
}

export const recordId = (record) => createHash('sha256').update(canonicalBytes(record)).digest('hex')

// A record's full encoding checked as the document says: canonical, a known kind, signed by the
// Ed25519 key its author's peer id inlines. Returns the record and its id; throws WireError.
export function openRecord (bytes) {
  const record = decodeCanonical(bytes)
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new WireError('a record is not a map')
  if (!KINDS.has(record.kind)) throw new WireError(`unknown kind ${record.kind}`)
  checkNumbers(record)
  const signature = record.signature
  if (DERIVED_KINDS.has(record.kind) && record.author === DERIVED_AUTHOR &&
      signature instanceof Uint8Array && signature.length === 0) return { record, id: recordId(record) }
  if (!(signature instanceof Uint8Array) || signature.length !== 64) throw new WireError('unsigned')
  const publicKey = typeof record.author === 'string' ? publicKeyOf(record.author) : null
  if (publicKey === null) throw new WireError(`author ${record.author} is not an Ed25519 peer id`)
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' })
  if (!verify(null, canonicalBytes(record), key, signature)) throw new WireError('bad signature')
  return { record, id: recordId(record) }
}

export const encodeRecord = (record) => encode(record)

// §4 "One form only": the float fields hold float64 (or nil where allowed), every other number
// is an integer; `details` values keep their own type. Checked by field, not by value.
const FLOAT_FIELDS = {
  experiment: { outcome: { score: 'nil' } },
  verification: { outcome: { score: 'nil' } },
  problem: { metric: { target: 'nil' }, budget: { wall_s: 'float' } },
  pattern: { success_rate: 'float', mean_delta: 'float' },
  hypothesis: { expected_lift: 'nil' } // an added field: absent when nil (§4)
}

function checkNumbers (record) {
  const floats = FLOAT_FIELDS[record.kind] ?? {}
  const walk = (value, spec, path) => {
    if (spec === 'float' || spec === 'nil') {
      if (!(value instanceof F64) && !(spec === 'nil' && value === null)) throw new WireError(`${path} is not a float64`)
    } else if (value instanceof F64) {
      if (!/\.details\.[^.]+$/.test(path)) throw new WireError(`${path} is a float in an integer field`)
    } else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
      for (const [key, item] of Object.entries(value)) walk(item, spec?.[key], `${path}.${key}`)
    }
  }
  walk(record, floats, record.kind)
}

// §3 "The envelope": {"records": [bin...], "v": 1}, checked in the document's order.
export function openEnvelope (bytes, maxRecords = 64) {
  const message = decodeCanonical(bytes)
  if (message === null || typeof message !== 'object' || Array.isArray(message)) throw new WireError('not a map')
  if (message.v !== 1) throw new WireError(`version ${message.v}`)
  const keys = Object.keys(message).sort()
  if (keys.join(',') !== 'records,v') throw new WireError(`keys ${keys}`)
  const items = message.records
  if (!Array.isArray(items) || !items.every((i) => i instanceof Uint8Array)) throw new WireError('records is not an array of bin')
  if (items.length < 1 || items.length > maxRecords) throw new WireError(`${items.length} records`)
  const opened = items.map(openRecord)
  if (new Set(opened.map((o) => o.id)).size !== opened.length) throw new WireError('repeated record')
  return opened
}

export const envelope = (records) => encode({ records: records.map(encodeRecord), v: 1 })
