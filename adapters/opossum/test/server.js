'use strict';
// A real `fusebox serve` for the tests: the built binary (FUSEBOX_BIN, else the workspace's
// target/debug/fusebox), a temporary SQLite file, an admin and an ingest key made with the CLI.
// Waiting is always for a condition, with a deadline.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BIN = process.env.FUSEBOX_BIN || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'fusebox');

/** A free port on loopback (bound, read, released). */
function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs a `fusebox` command that prints a secret on its last line, and returns the secret. */
function secret (database, args) {
  const out = execFileSync(BIN, [...args, '--database', database], { encoding: 'utf8' });
  const line = out.split('\n').map(l => l.trim()).reverse().find(l => l.startsWith('fbu_') || l.startsWith('fbk_'));
  if (!line) throw new Error(`fusebox ${args.join(' ')} printed no secret`);
  return line;
}

/** Polls `check` until it returns a value other than undefined/false; throws after `deadlineMs`. */
async function waitFor (what, deadlineMs, check) {
  const until = Date.now() + deadlineMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last !== undefined && last !== false && last !== null) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what} (last: ${last})`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

class FuseboxServer {
  static async start (services) {
    if (!fs.existsSync(BIN)) {
      throw new Error(`no fusebox binary at ${BIN}: build it (cargo build -p backend --bin fusebox) or set FUSEBOX_BIN`);
    }
    const server = new FuseboxServer();
    server.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusebox-opossum-'));
    server.database = `sqlite://${path.join(server.dir, 'fusebox.db')}`;
    server.admin = secret(server.database, ['users', 'add', 'admin', '--admin']);
    server.keys = {};
    for (const service of services) server.keys[service] = secret(server.database, ['keys', 'create', '--service', service]);
    server.port = await freePort();
    server.url = `http://127.0.0.1:${server.port}`;
    await server.resume();
    return server;
  }

  /** Starts (again) on the same port and database. */
  async resume () {
    const child = spawn(BIN, ['serve', '--bind', `127.0.0.1:${this.port}`, '--database', this.database], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, RUST_LOG: 'warn' }
    });
    this.child = child;
    let output = '';
    const listening = new Promise((resolve, reject) => {
      child.stdout.on('data', chunk => {
        output += chunk;
        if (output.includes('http://')) resolve();
      });
      child.once('exit', code => reject(new Error(`fusebox serve exited (${code}) before listening`)));
    });
    const deadline = new Promise((_resolve, reject) => {
      setTimeout(() => reject(new Error('fusebox serve printed no URL within 30 s')), 30000).unref();
    });
    await Promise.race([listening, deadline]);
  }

  /** Stops the server (SIGKILL: nothing is flushed that was not committed) and waits for it. */
  async stop () {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise(resolve => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  async close () {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async request (method, path, body, token = this.admin) {
    const response = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  async get (path) {
    const answer = await this.request('GET', path);
    if (answer.status !== 200) throw new Error(`GET ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  async write (method, path, body) {
    const answer = await this.request(method, path, body);
    if (answer.status >= 300) throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /** The breaker's summary in `/api/v1/breakers`, if listed. */
  async breaker (service, name) {
    const list = await this.get(`/api/v1/breakers?service=${encodeURIComponent(service)}`);
    return list.find(b => b.breaker === name);
  }

  /** Opens the live stream; `next(predicate, deadlineMs)` resolves with the first matching event. */
  async stream () {
    const controller = new AbortController();
    const response = await fetch(`${this.url}/api/v1/stream`, {
      headers: { authorization: `Bearer ${this.admin}` },
      signal: controller.signal
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const events = [];
    let wake = null;
    (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = { event: '', data: '' };
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event.event = line.slice(6).trim();
              else if (line.startsWith('data:')) event.data += line.slice(5).trim();
            }
            if (event.event) events.push(event);
            if (wake) wake();
          }
        }
      } catch (_) {}
    })();
    return {
      next: (want, deadlineMs) => waitFor('a matching stream event', deadlineMs, () => {
        const index = events.findIndex(want);
        if (index < 0) return undefined;
        return events.splice(index, 1)[0];
      }),
      close: () => controller.abort()
    };
  }
}

/**
 * A config as `PUT …/config` takes it, fitted to opossum's defaults (10 s rolling window,
 * volumeThreshold 0, which judges from the first call, one probe); `changes` override fields.
 */
function opossumConfig (changes = {}) {
  return {
    version: 0,
    failure_rate_threshold: 0.5,
    window: { kind: 'time', seconds: 10 },
    minimum_calls: 1,
    wait: { kind: 'fixed', ms: 30000 },
    half_open_probes: 1,
    half_open_successes: 1,
    ...changes
  };
}

module.exports = { FuseboxServer, waitFor, opossumConfig, BIN };
