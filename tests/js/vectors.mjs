// Checks records.mjs against the test vectors of docs/protocol.md (§2, §6): the worked example
// and the whole-number-float vectors are rebuilt from their listed values and must come out
// byte for byte, and the given bytes must open (canonical, id, signature, floats kept floats).
// Prints one JSON line per vector; exits 1 if any differs.
//
//   node vectors.mjs <path of docs/protocol.md>

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { F64, Signer, canonicalBytes, decode, encode, envelope, f64, openRecord, recordId } from './records.mjs'

const doc = readFileSync(process.argv[2], 'utf8')
const hexBlock = (text) => Buffer.from(text.replace(/\s+/g, ''), 'hex')
const seed = doc.match(/seed `([0-9a-f]{64})`/)[1]
const signer = new Signer(Buffer.from(seed, 'hex'))
const base = { created_ms: 1700000000000 }
const strategyFile = 'x = 1\n'

const values = {
  hypothesis: {
    ...base, kind: 'hypothesis', mutation_kind: 'prune_list', pattern: '1'.repeat(64),
    problem: '2'.repeat(64), text: 'Pruning works here too.'
  },
  experiment: {
    ...base, kind: 'experiment', problem: '2'.repeat(64), parent: null,
    strategy: { 'strategy.py': strategyFile }, diff: '', mutation_kind: 'baseline',
    description: '', hypothesis: '', hypothesis_id: null, mutator: 'offline',
    outcome: {
      status: 'ok', score: f64(1.0), items: {}, strategy_fuel: 1000, evaluator_fuel: 2000,
      stderr_tail: '', details: { n: 3, neg: f64(-0.0), ratio: f64(2.0) }
    }
  },
  problem: {
    ...base, kind: 'problem', name: 'p', statement: 's', domains: [],
    metric: { name: 'm', direction: 'maximize', target: f64(1.0), source: 'evaluator' },
    checklist: [], budget: { fuel: 20000000000, memory_mb: 512, wall_s: f64(60.0) },
    mutable: ['strategy.py'], entry: 'solve', seed: 0,
    files: { 'evaluate.py': new Uint8Array(0), 'strategy.py': Buffer.from(strategyFile) }
  },
  pattern: {
    ...base, kind: 'pattern', mutation_kind: 'prune_list', text: 't', supporting: [],
    contradicting: [], success_rate: f64(1.0), mean_delta: f64(0.0), domains: [], retired: false
  }
}

const expected = []
// §6 "Worked example": canonical bytes, id, signature, and the envelope's message id
const worked = doc.match(/Canonical bytes \(\d+ bytes, hex\):\n\n```\n([0-9a-f\n]+)```/)
const signature = doc.match(/- Signature: `([0-9a-f]+)`/)[1]
const workedSigned = { ...values.hypothesis, author: signer.peerId, signature: Buffer.from(signature, 'hex') }
expected.push({
  name: 'hypothesis', id: doc.match(/- Record id: `([0-9a-f]{64})`/)[1], bytes: encode(workedSigned),
  canonical: hexBlock(worked[1]),
  messageId: doc.match(/whose message id is\n`([0-9a-f]{64})`/)[1]
})
for (const [, name, id, size, hex] of doc.matchAll(/```\nvector (\w+)\nid ([0-9a-f]{64})\nbytes (\d+)\n([0-9a-f\n]+)```/g)) {
  const bytes = hexBlock(hex)
  if (bytes.length !== Number(size)) throw new Error(`vector ${name}: ${bytes.length} bytes, the document says ${size}`)
  expected.push({ name, id, bytes })
}

let failures = 0
for (const vector of expected) {
  const problems = []
  const built = signer.seal(values[vector.name])
  if (Buffer.compare(encode(built), vector.bytes) !== 0) problems.push('rebuilt bytes differ')
  if (recordId(built) !== vector.id) problems.push(`rebuilt id ${recordId(built)}`)
  if (vector.canonical && Buffer.compare(canonicalBytes(built), vector.canonical) !== 0) problems.push('canonical bytes differ')
  if (vector.messageId) {
    const messageId = createHash('sha256').update(envelope([built])).digest('hex')
    if (messageId !== vector.messageId) problems.push(`message id ${messageId}`)
  }
  try {
    const { id } = openRecord(vector.bytes)
    if (id !== vector.id) problems.push(`opened id ${id}`)
  } catch (error) {
    problems.push(`refused: ${error.message}`)
  }
  // §4 "One form only": the same record with its whole floats written as integers is refused
  const intified = asIntegers(decode(vector.bytes))
  if (JSON.stringify(intified.found) !== '[]') {
    try {
      openRecord(encode(intified.value))
      problems.push(`accepted with ${intified.found} written as integers`)
    } catch {}
  }
  failures += problems.length ? 1 : 0
  process.stdout.write(JSON.stringify({ vector: vector.name, ok: problems.length === 0, problems }) + '\n')
}
process.stdout.write(JSON.stringify({ vectors: expected.length, failures }) + '\n')
process.exit(failures ? 1 : 0)

// The value with every whole float64 turned into an integer; `found` names them.
function asIntegers (value, path = '', found = []) {
  if (value instanceof F64) {
    if (Number.isInteger(value.value)) { found.push(path); return { value: value.value + 0, found } }
    return { value, found }
  }
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return { value, found }
  const out = Array.isArray(value) ? [] : {}
  for (const [key, item] of Object.entries(value)) out[key] = asIntegers(item, `${path}.${key}`, found).value
  return { value: out, found }
}
