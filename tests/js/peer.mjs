// A js-libp2p swarm peer written from docs/protocol.md, driven by tests/test_js_interop.py: it
// reads one JSON command a line on stdin and prints one JSON event a line on stdout.
//
//   node peer.mjs --seed <64 hex> --bootstrap <multiaddr> [--ping-ms N]
//
// --ping-ms: js-libp2p's keep-alive ping interval (default 10 s), shorter in the test so that
// pings happen while the node works; a ping not answered in time drops the connection.
//
// Commands: {"cmd": "sync"} | {"cmd": "summary", "problems", "after"} | {"cmd": "fetch", "ids"}
// | {"cmd": "subscribe", "topic"} | {"cmd": "publish", "topic",
// "record": "experiment" | "pattern", "problem", "bad": null | "signature" | "float_as_int" |
// "path" | "topic" (a good record sent to the given, wrong, topic), "hold": bool} |
// {"cmd": "stop"}.

import './node20.mjs' // first: a built-in Node 20 lacks (see there)
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { TopicValidatorResult } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import {
  DERIVED_AUTHOR, Signer, WireError, decodeCanonical, encode, encodeRecord, envelope, f64, openEnvelope,
  openRecord, recordId
} from './records.mjs'

const SYNC = '/swarm/sync/1.0.0' // §7
const PROBLEMS_TOPIC = '/swarm/1/problems' // §3
const MAX_REQUEST_BYTES = 65536
const MAX_RESPONSE_BYTES = 4194304
const MAX_FETCH_IDS = 1024
const WAIT_MS = 10000 // bound on waiting for a topic subscriber or a sync answer

const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')

const { values: args } = parseArgs({ options: {
  seed: { type: 'string' }, bootstrap: { type: 'string' }, 'ping-ms': { type: 'string', default: '10000' }
} })
const seed = Buffer.from(args.seed, 'hex')
const signer = new Signer(seed)
const held = new Map() // record id (hex) -> full encoding: what we serve by sync

const libp2p = await createLibp2p({
  privateKey: await generateKeyPairFromSeed('Ed25519', seed),
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionMonitor: { pingInterval: Number(args['ping-ms']) },
  services: {
    identify: identify(),
    pubsub: gossipsub({
      // §3: the message id is the SHA-256 of `data`, not js's default (public key + seqno)
      msgIdFn: (message) => new Uint8Array(createHash('sha256').update(message.data).digest()),
      globalSignaturePolicy: 'StrictSign',
      fallbackToFloodsub: false, // the document lists meshsub 1.2, 1.1, 1.0 only
      emitSelf: false,
      D: 6,
      Dlo: 4,
      Dhi: 12
    })
  }
})
const pubsub = libp2p.services.pubsub
emit('started', {
  peer_id: libp2p.peerId.toString(),
  derived_peer_id: signer.peerId, // §2 by hand: must equal libp2p's
  meshsub: pubsub.multicodecs
})

libp2p.addEventListener('peer:connect', (evt) => emit('connected', { peer: evt.detail.toString() }))
let disconnects = 0 // before `stop`: a keep-alive ping that failed drops the connection
libp2p.addEventListener('peer:disconnect', (evt) => {
  disconnects += 1
  emit('disconnected', { peer: evt.detail.toString() })
})

// ---- gossip: verify what arrives (§3, §4, §6) --------------------------------------------------

function topicFits (topic, record) {
  if (record.kind === 'problem' || record.kind === 'pattern') return topic === PROBLEMS_TOPIC
  if (record.kind === 'experiment' || record.kind === 'hypothesis') return topic === `/swarm/1/problem/${record.problem}`
  if (!topic.startsWith('/swarm/1/problem/')) return false
  // a verification on its experiment's problem's topic, a verdict on its hypothesis's; one
  // whose experiment or hypothesis we do not hold cannot be placed, and passes
  const [cited, kind] = record.kind === 'verification' ? [record.experiment, 'experiment'] : [record.hypothesis, 'hypothesis']
  const found = held.get(cited)
  const placed = found === undefined ? null : openRecord(found).record
  if (placed === null || placed.kind !== kind) return true
  return topic === `/swarm/1/problem/${placed.problem}`
}

function checkMessage (topic, data) {
  const opened = openEnvelope(data)
  for (const { record, id } of opened) {
    if (!topicFits(topic, record)) throw new WireError(`${record.kind} ${id} on ${topic}`)
    held.set(id, encodeRecord(record))
  }
  return opened
}

// §3: the validator REJECTs a message any of whose checks fail (GossipSub then penalises the
// forwarder and does not relay it); what passes is announced as it is delivered.
function validator (topic) {
  return (propagationSource, message) => {
    try {
      checkMessage(topic, message.data)
      return TopicValidatorResult.Accept
    } catch (error) {
      emit('gossip', { topic, from: propagationSource.toString(), verified: false, why: String(error.message) })
      return TopicValidatorResult.Reject
    }
  }
}

pubsub.addEventListener('message', (evt) => {
  const { topic, data, from } = evt.detail
  const opened = openEnvelope(data) // accepted by the validator: cannot throw
  emit('gossip', {
    topic, from: from.toString(), verified: true,
    message_id: createHash('sha256').update(data).digest('hex'),
    ids: opened.map((o) => o.id), kinds: opened.map((o) => o.record.kind),
    authors: opened.map((o) => o.record.author)
  })
})

// ---- sync (§7): frames are a 4-byte big-endian length, then a canonical msgpack map ------------

function frame (payload) {
  const header = Buffer.alloc(4)
  header.writeUInt32BE(payload.length)
  return Buffer.concat([header, payload])
}

async function readFrame (source, limit) {
  const iterator = source[Symbol.asyncIterator]()
  let buffer = Buffer.alloc(0)
  let size = null
  for (;;) {
    if (size === null && buffer.length >= 4) {
      size = buffer.readUInt32BE(0)
      if (size > limit) throw new WireError(`a frame of ${size} bytes is over ${limit}`)
    }
    if (size !== null && buffer.length >= 4 + size) {
      if (buffer.length > 4 + size) throw new WireError('bytes after the frame')
      return buffer.subarray(4)
    }
    const { value, done } = await iterator.next()
    if (done) throw new WireError(`the stream ended after ${buffer.length} bytes`)
    buffer = Buffer.concat([buffer, value.subarray()])
  }
}

const idsBin = (hexIds) => Buffer.concat(hexIds.slice().sort().map((id) => Buffer.from(id, 'hex')))

function idsOf (bin) {
  if (!(bin instanceof Uint8Array) || bin.length % 32 !== 0) throw new WireError('ids are not a bin of 32-byte digests')
  const ids = []
  for (let at = 0; at < bin.length; at += 32) ids.push(Buffer.from(bin.subarray(at, at + 32)).toString('hex'))
  for (let i = 1; i < ids.length; i++) if (ids[i - 1] >= ids[i]) throw new WireError('ids not sorted ascending and distinct')
  return ids
}

async function request (peer, message) {
  const stream = await libp2p.dialProtocol(peer, SYNC, { signal: AbortSignal.timeout(WAIT_MS) })
  try {
    await stream.sink([frame(encode(message))])
    return decodeCanonical(await readFrame(stream.source, MAX_RESPONSE_BYTES))
  } finally {
    await stream.close()
  }
}

// The requester's side: page through the summary, fetch what we lack, check every record.
async function syncWith (peer) {
  const taken = []
  let after = null
  for (;;) {
    const summary = await request(peer, { after, problems: null, type: 'summary', v: 1 })
    if (summary.v !== 1 || typeof summary.truncated !== 'boolean') throw new WireError('not a summary')
    const missing = idsOf(summary.ids).filter((id) => !held.has(id))
    for (let at = 0; at < missing.length; at += MAX_FETCH_IDS) {
      const chunk = missing.slice(at, at + MAX_FETCH_IDS)
      const response = await request(peer, { ids: idsBin(chunk), type: 'fetch', v: 1 })
      const items = response.records
      if (response.v !== 1 || !Array.isArray(items)) throw new WireError('not a fetch response')
      const opened = items.length ? openEnvelope(encode({ records: items, v: 1 }), MAX_FETCH_IDS) : []
      for (const { record, id } of opened) {
        if (!chunk.includes(id)) throw new WireError(`record ${id} was not asked for`)
        held.set(id, encodeRecord(record))
        taken.push({ id, kind: record.kind })
      }
    }
    if (!summary.truncated || summary.ids.length === 0) return taken
    after = Buffer.from(summary.ids.subarray(summary.ids.length - 32))
  }
}

// The responder's side, so the Python node can sync from us.
await libp2p.handle(SYNC, async ({ stream, connection }) => {
  try {
    const req = decodeCanonical(await readFrame(stream.source, MAX_REQUEST_BYTES))
    if (req.v !== 1) throw new WireError(`version ${req.v}`)
    let response
    if (req.type === 'summary') {
      const after = req.after === null ? '' : Buffer.from(req.after).toString('hex')
      const ids = [...held.keys()].filter((id) => id > after).sort()
      response = { ids: idsBin(ids), truncated: false, v: 1 }
    } else if (req.type === 'fetch') {
      const records = idsOf(req.ids).filter((id) => held.has(id)).map((id) => held.get(id))
      response = { records, v: 1 }
    } else throw new WireError(`request type ${req.type}`)
    await stream.sink([frame(encode(response))])
    emit('served', { peer: connection.remotePeer.toString(), type: req.type })
  } catch (error) {
    emit('served', { peer: connection.remotePeer.toString(), error: String(error.message) })
    stream.abort(error) // §7: a request we cannot parse resets the stream
  }
})

// ---- records we author ------------------------------------------------------------------------

function experiment (problem, strategyKey) {
  return {
    kind: 'experiment',
    created_ms: Date.now(),
    problem,
    parent: null,
    strategy: { [strategyKey]: 'def solve(public_dir):\n    return {"x": 1.0}\n' },
    diff: '',
    mutation_kind: 'baseline',
    description: 'written by the js-libp2p interop peer',
    hypothesis: '',
    hypothesis_id: null,
    mutator: 'js-peer',
    outcome: {
      status: 'ok',
      score: f64(1e9), // a whole number, still a float64 (§4); beats any best: replayed
      items: { positive: true },
      strategy_fuel: 1000,
      evaluator_fuel: 2000,
      stderr_tail: '',
      details: { label: 3, ratio: f64(2.0) } // an int stays an int, a float a float
    }
  }
}

// §5 "Derived records": unsigned, author "derived"; it cites nothing, so any created_ms is
// consistent (a receiver stores it and never uses it: it did not derive it).
function pattern () {
  return {
    kind: 'pattern',
    author: DERIVED_AUTHOR,
    signature: new Uint8Array(0),
    created_ms: Date.now(),
    mutation_kind: 'scale_constant',
    text: 'Held by the js peer: a derived record, unsigned.',
    supporting: [],
    contradicting: [],
    success_rate: f64(1.0),
    mean_delta: f64(0.0),
    domains: ['test'],
    retired: false
  }
}

function author (cmd) {
  if (cmd.record === 'pattern') return pattern()
  const fields = experiment(cmd.problem, cmd.bad === 'path' ? '../evil.py' : 'strategy.py') // §5
  if (cmd.bad != null) fields.description += ` (bad: ${cmd.bad})`
  if (cmd.bad === 'float_as_int') fields.outcome.score = 1 // what a stock JS msgpack writes
  const sealed = signer.seal(fields)
  if (cmd.bad === 'signature') sealed.signature[0] ^= 0x01
  return sealed
}

async function waitSubscriber (topic) {
  const deadline = Date.now() + WAIT_MS
  while (pubsub.getSubscribers(topic).length === 0) {
    if (Date.now() > deadline) throw new Error(`no peer subscribed to ${topic}`)
    await new Promise((resolve) => pubsub.addEventListener('subscription-change', resolve, { once: true }))
  }
}

async function run (cmd) {
  if (cmd.cmd === 'sync') {
    const peer = libp2p.getPeers()[0]
    const taken = await syncWith(peer)
    emit('synced', {
      peer: peer.toString(), ids: taken.map((t) => t.id), kinds: taken.map((t) => t.kind), held: [...held.keys()]
    })
  } else if (cmd.cmd === 'summary') { // one summary exchange, as asked: §7 filters and paging
    const summary = await request(libp2p.getPeers()[0], {
      after: cmd.after == null ? null : Buffer.from(cmd.after, 'hex'),
      problems: cmd.problems == null ? null : idsBin(cmd.problems),
      type: 'summary',
      v: 1
    })
    emit('summary', { ids: idsOf(summary.ids), truncated: summary.truncated })
  } else if (cmd.cmd === 'fetch') { // ids sent in the order given: unsorted is a bad request
    const ids = Buffer.concat(cmd.ids.map((id) => Buffer.from(id, 'hex')))
    try {
      const response = await request(libp2p.getPeers()[0], { ids, type: 'fetch', v: 1 })
      emit('fetched', { count: response.records.length, error: null })
    } catch (error) {
      emit('fetched', { count: null, error: `${error.name}: ${error.message}` })
    }
  } else if (cmd.cmd === 'subscribe') {
    pubsub.topicValidators.set(cmd.topic, validator(cmd.topic))
    pubsub.subscribe(cmd.topic)
    emit('subscribed', { topic: cmd.topic })
  } else if (cmd.cmd === 'publish') {
    const record = author(cmd)
    const id = recordId(record)
    if (cmd.hold) {
      held.set(id, encodeRecord(record))
      emit('held', { id, kind: record.kind })
      return
    }
    await waitSubscriber(cmd.topic)
    const data = envelope([record])
    const { recipients } = await pubsub.publish(cmd.topic, data)
    if (cmd.bad == null) held.set(id, encodeRecord(record))
    emit('published', { id, bad: cmd.bad ?? null, topic: cmd.topic, recipients: recipients.map(String) })
  } else if (cmd.cmd === 'stop') {
    const connections = libp2p.getConnections().map((c) => ({ peer: c.remotePeer.toString(), rtt_ms: c.rtt ?? null }))
    const before = disconnects
    await libp2p.stop()
    emit('stopped', { connections, disconnects: before })
    process.exit(0)
  } else throw new Error(`unknown command ${JSON.stringify(cmd)}`)
}

// Commands run one at a time, in order.
let queue = Promise.resolve()
createInterface({ input: process.stdin }).on('line', (line) => {
  queue = queue.then(() => run(JSON.parse(line))).catch((error) => {
    emit('error', { message: String(error.stack ?? error) })
  })
})

await libp2p.dial(multiaddr(args.bootstrap), { signal: AbortSignal.timeout(WAIT_MS) })
emit('dialed', { addr: args.bootstrap })
