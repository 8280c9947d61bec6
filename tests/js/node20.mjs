// Promise.withResolvers (ES2024) for Node 20: js-libp2p 2.9's peer store locks through
// mortice 3.3 -> it-queue 1.1, which call it although no package's `engines` asks for Node 22.
// Imported first by peer.mjs, so it is in place before any of those modules runs.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
