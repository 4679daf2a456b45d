// The peer that the benchmarks compare twitter-search with: the original
// socket.io lesson app, written as a careful Node developer would write it
// for many users. One upstream connection for the whole server (Bluesky's
// Jetstream, here the fake one of examples/fake_jetstream.rs), each socket's
// search kept on the socket, every post checked against every socket's
// search and sent with `socket.emit('tweets', post)`.
//
//   JETSTREAM_URL=ws://127.0.0.1:4100/subscribe PORT=3960 node server.js
//
// Browsers (and the load generator with --protocol socketio) connect over
// socket.io's websocket transport and send `updateTerm`, `stop`, `start`.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const WebSocket = require('ws');

const port = Number(process.env.PORT || 3960);
const host = process.env.HOST || '127.0.0.1';
const jetstreamUrl =
  process.env.JETSTREAM_URL ||
  'ws://127.0.0.1:4100/subscribe?wantedCollections=app.bsky.feed.post';

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});

// A search is alternatives (`,` or `OR`) of words that must all occur:
// `rust wasm, go` is (rust AND wasm) OR go. Parsed once, when it is set.
function parseSearch(term) {
  return String(term)
    .toLowerCase()
    .split(/,|\bor\b/)
    .map((alternative) => alternative.split(/[^\p{L}\p{N}_]+/u).filter(Boolean))
    .filter((words) => words.length > 0);
}

// The post's words, once per post, so each socket's check is a few lookups.
function wordsOf(text) {
  return new Set(text.toLowerCase().split(/[^\p{L}\p{N}_]+/u).filter(Boolean));
}

function matches(search, words) {
  return search.some((alternative) => alternative.every((word) => words.has(word)));
}

io.on('connection', (socket) => {
  socket.data.search = null;
  socket.data.streaming = true;
  socket.on('updateTerm', (term) => {
    if (typeof term !== 'string' || term.length > 512) return;
    const search = parseSearch(term);
    socket.data.search = search.length > 0 ? search : null;
    socket.emit('updatedTerm', term);
  });
  socket.on('stop', () => {
    socket.data.streaming = false;
  });
  socket.on('start', () => {
    socket.data.streaming = true;
  });
});

// Jetstream commit → the post shape of twitter-search's protocol.
function toPost(event) {
  const commit = event.commit;
  if (event.kind !== 'commit' || !commit || commit.operation !== 'create') return null;
  const record = commit.record || {};
  if (typeof record.text !== 'string') return null;
  return {
    id: `${event.did}/${commit.rkey}`,
    text: record.text,
    created_at: record.createdAt,
    lang: Array.isArray(record.langs) ? record.langs[0] : null,
    url: `https://bsky.app/profile/${event.did}/post/${commit.rkey}`,
    user: { name: event.did, screen_name: event.did, profile_image_url: null },
  };
}

function dispatch(post) {
  const words = wordsOf(post.text);
  for (const socket of io.of('/').sockets.values()) {
    const { search, streaming } = socket.data;
    if (streaming && search && matches(search, words)) {
      socket.emit('tweets', post);
    }
  }
}

function connectUpstream() {
  const upstream = new WebSocket(jetstreamUrl);
  upstream.on('message', (data) => {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    const post = toPost(event);
    if (post) dispatch(post);
  });
  upstream.on('error', (error) => console.error(`upstream: ${error.message}`));
  upstream.on('close', () => setTimeout(connectUpstream, 1000));
}

httpServer.listen(port, host, () => {
  console.error(`socket.io peer on ${host}:${port}, upstream ${jetstreamUrl}`);
  connectUpstream();
});
