'use strict';
// fusebox-opossum against a real `fusebox serve` and real opossum breakers.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const CircuitBreaker = require('opossum');
const fusebox = require('..');
const { FuseboxServer, waitFor, opossumConfig } = require('./server');

const SERVICE = 'node-shop';
let server;
const reporters = [];

before(async () => {
  server = await FuseboxServer.start([SERVICE]);
});

after(async () => {
  for (const reporter of reporters) await reporter.close();
  await server.close();
});

/** A breaker around an action that fails while `dependency.down` is true. */
function breakerFor (name, options = {}) {
  const dependency = { down: false, calls: 0 };
  const breaker = new CircuitBreaker(async () => {
    dependency.calls++;
    if (dependency.down) throw new Error('dependency down');
    return 'ok';
  }, { name, resetTimeout: 60000, errorThresholdPercentage: 50, ...options });
  return { breaker, dependency };
}

function attach (breaker, changes = {}) {
  const reporter = fusebox.attach(breaker, {
    url: server.url,
    key: server.keys[SERVICE],
    service: SERVICE,
    instance: 'node-1',
    intervalMs: 200,
    noConfigRetryMs: 100,
    onWarning: () => {},
    ...changes
  });
  reporters.push(reporter);
  return reporter;
}

/** Fires until the call settles; resolves with 'ok' or the error's code or message. */
function fire (breaker) {
  return breaker.fire().then(value => value, error => error.code || error.message);
}

async function configView (breaker) {
  return server.get(`/api/v1/breakers/${SERVICE}/${breaker}/config`);
}

test('a trip shows in the breaker list, the transition log with its trigger, and the live stream', async () => {
  const stream = await server.stream();
  const { breaker, dependency } = breakerFor('payments');
  attach(breaker);
  for (let i = 0; i < 4; i++) assert.equal(await fire(breaker), 'ok');
  dependency.down = true;
  while (!breaker.opened) await fire(breaker);

  const event = await stream.next(e => e.event === 'transition' && JSON.parse(e.data).breaker === 'payments', 10000);
  const live = JSON.parse(event.data);
  assert.equal(live.service, SERVICE);
  assert.equal(live.instance, 'node-1');
  assert.deepEqual([live.from, live.to], ['closed', 'open']);
  assert.equal(live.trigger.kind, 'failure_rate');
  assert.equal(live.trigger.threshold, 0.5);
  assert.ok(live.trigger.value > 0.5, `tripped at ${live.trigger.value}`);
  stream.close();

  const summary = await waitFor('payments Open in /api/v1/breakers', 10000, async () => {
    const b = await server.breaker(SERVICE, 'payments');
    return b?.state === 'open' && b;
  });
  assert.equal(summary.last_trip.trigger.kind, 'failure_rate');
  assert.equal(summary.instances[0].instance, 'node-1');

  const log = await server.get(`/api/v1/breakers/${SERVICE}/payments/transitions`);
  assert.equal(log[0].to, 'open');
  assert.equal(log[0].trigger.kind, 'failure_rate');
  assert.equal(log[0].trigger.value, live.trigger.value);

  // Rejections and failures reach the per-second aggregates.
  assert.equal(await fire(breaker), 'EOPENBREAKER');
  await waitFor('the calls in the series', 10000, async () => {
    const now = Date.now();
    const series = await server.get(`/api/v1/breakers/${SERVICE}/payments/series?from_ms=${now - 60000}&to_ms=${now + 1000}`);
    const total = series.points.reduce((sum, p) => ({
      success: sum.success + p.counts.success, failure: sum.failure + p.counts.failure, rejected: sum.rejected + p.counts.rejected
    }), { success: 0, failure: 0, rejected: 0 });
    return total.success === 4 && total.failure === dependency.calls - 4 && total.rejected === 1;
  });
});

test('a pushed config reaches the live breaker and shows in sync', async () => {
  const { breaker } = breakerFor('inventory');
  attach(breaker);
  await waitFor('inventory reported', 10000, () => server.breaker(SERVICE, 'inventory'));
  await server.write('PUT', `/api/v1/breakers/${SERVICE}/inventory/config`, {
    config: opossumConfig({ failure_rate_threshold: 0.3, call_timeout_ms: 2500 }), reason: 'first'
  });
  await waitFor('the first config applied', 10000, () => breaker.options.errorThresholdPercentage === 30);
  assert.equal(breaker.options.timeout, 2500);

  const saved = await server.write('PUT', `/api/v1/breakers/${SERVICE}/inventory/config`, {
    config: opossumConfig({ failure_rate_threshold: 0.2, wait: { kind: 'fixed', ms: 1234 } }), reason: 'tighter'
  });
  const version = saved.config.version;
  // How soon is the bench's business; a loaded machine gets a generous deadline here.
  await waitFor('the change applied to the live breaker', 10000, () =>
    breaker.options.errorThresholdPercentage === 20 && breaker.options.resetTimeout === 1234);
  assert.equal(breaker.options.timeout, false);

  await waitFor('the instance in sync', 5000, async () => {
    const view = await configView('inventory');
    const instance = view.instances.find(i => i.instance === 'node-1');
    return instance?.in_sync && instance.running_version === version && instance.refused === null;
  });
  // The version also travels with every aggregate.
  await waitFor('the version in the breaker list', 5000, async () => {
    const b = await server.breaker(SERVICE, 'inventory');
    return b.instances[0].config_version === version;
  });
});

test('an unsupported field is refused with its reason and the breaker keeps its config', async () => {
  const { breaker } = breakerFor('search');
  attach(breaker);
  await waitFor('search reported', 10000, () => server.breaker(SERVICE, 'search'));
  await server.write('PUT', `/api/v1/breakers/${SERVICE}/search/config`, {
    config: opossumConfig({ failure_rate_threshold: 0.4 })
  });
  await waitFor('the config applied', 10000, () => breaker.options.errorThresholdPercentage === 40);
  const good = (await configView('search')).current.config.version;

  const saved = await server.write('PUT', `/api/v1/breakers/${SERVICE}/search/config`, {
    config: opossumConfig({ failure_rate_threshold: 0.1, consecutive_failures: 5 })
  });
  const refusedVersion = saved.config.version;
  const instance = await waitFor('the refusal reported', 10000, async () => {
    const view = await configView('search');
    return view.instances.find(i => i.instance === 'node-1' && i.refused);
  });
  assert.equal(instance.refused.version, refusedVersion);
  assert.equal(instance.refused.field, 'consecutive_failures');
  assert.match(instance.refused.rule, /opossum has no consecutive-failures rule/);
  assert.equal(instance.running_version, good);
  assert.equal(instance.in_sync, false);
  assert.equal(breaker.options.errorThresholdPercentage, 40);

  // A window opossum cannot change is refused too, naming the one it runs.
  await server.write('PUT', `/api/v1/breakers/${SERVICE}/search/config`, {
    config: opossumConfig({ window: { kind: 'count', calls: 100 } })
  });
  const windowRefusal = await waitFor('the window refused', 10000, async () => {
    const view = await configView('search');
    const i = view.instances.find(i => i.instance === 'node-1');
    return i.refused?.field === 'window' && i.refused;
  });
  assert.match(windowRefusal.rule, /"seconds": 10/);
});

test('forced open holds, disabled and metrics only let calls through, automatic closes again', async () => {
  const { breaker, dependency } = breakerFor('ledger');
  attach(breaker);
  await waitFor('ledger reported', 10000, () => server.breaker(SERVICE, 'ledger'));
  await server.write('PUT', `/api/v1/breakers/${SERVICE}/ledger/config`, { config: opossumConfig({ wait: { kind: 'fixed', ms: 50 } }) });
  await waitFor('the config applied', 10000, () => breaker.options.resetTimeout === 50);

  await server.write('POST', `/api/v1/breakers/${SERVICE}/ledger/control`, { mode: 'forced_open', reason: 'maintenance' });
  await waitFor('the breaker forced open', 5000, () => breaker.opened);
  const calls = dependency.calls;
  // Far past the configured 50 ms wait: still Open, every call rejected, none reaches the dependency.
  const holdUntil = Date.now() + 300;
  while (Date.now() < holdUntil) {
    assert.equal(await fire(breaker), 'EOPENBREAKER');
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  assert.equal(breaker.opened, true);
  assert.equal(dependency.calls, calls);
  const log = await waitFor('the manual transition logged', 5000, async () => {
    const l = await server.get(`/api/v1/breakers/${SERVICE}/ledger/transitions`);
    return l.length > 0 && l[0].to === 'open' && l;
  });
  assert.equal(log[0].trigger.kind, 'manual');
  await waitFor('the forced version in sync', 5000, async () => {
    const view = await configView('ledger');
    return view.instances.find(i => i.instance === 'node-1')?.in_sync;
  });

  await server.write('POST', `/api/v1/breakers/${SERVICE}/ledger/control`, { mode: 'disabled' });
  await waitFor('the breaker disabled', 5000, () => !breaker.enabled);
  assert.equal(breaker.closed, true);
  dependency.down = true;
  for (let i = 0; i < 20; i++) assert.equal(await fire(breaker), 'dependency down');
  assert.equal(breaker.closed, true);

  await server.write('POST', `/api/v1/breakers/${SERVICE}/ledger/control`, { mode: 'metrics_only' });
  await waitFor('the breaker enabled again', 5000, () => breaker.enabled);
  while (!breaker.opened) await fire(breaker);
  // Open, yet the calls still reach the dependency.
  const before = dependency.calls;
  assert.equal(await fire(breaker), 'dependency down');
  assert.equal(dependency.calls, before + 1);

  dependency.down = false;
  await server.write('POST', `/api/v1/breakers/${SERVICE}/ledger/control`, { mode: 'automatic' });
  await waitFor('metrics only left', 5000, () => !Object.hasOwn(breaker, 'pendingClose'));
  await waitFor('the breaker closed by a good probe', 5000, async () => {
    await fire(breaker);
    return breaker.closed;
  });
});

test('with the server down calls never wait, memory stays bounded, and everything arrives once it is back', async () => {
  const down = await FuseboxServer.start(['node-down']);
  const { breaker, dependency } = breakerFor('db', { resetTimeout: 600000 });
  const maxBuffered = 40;
  const reporter = fusebox.attach(breaker, {
    url: down.url,
    key: down.keys['node-down'],
    service: 'node-down',
    instance: 'node-1',
    intervalMs: 10,
    maxBuffered,
    maxBackoffMs: 200,
    followConfigs: false,
    onWarning: () => {}
  });
  try {
    await waitFor('a first batch acknowledged', 10000, () => reporter.snapshot().batchesAcked > 0);
    const fromMs = Date.now() - 1000;
    await down.stop();

    // 3,000 calls with the server down, the breaker tripping among them; each batch of them
    // settles before the event loop's next check phase, so none waited on the network.
    const outcomes = { ok: 0, 'dependency down': 0, EOPENBREAKER: 0 };
    for (let round = 0; round < 30; round++) {
      dependency.down = round >= 10;
      let settledInTurn = true;
      const check = new Promise(resolve => setImmediate(() => resolve()));
      let pending = 100;
      const all = [];
      for (let i = 0; i < 100; i++) all.push(fire(breaker).then(result => { outcomes[result]++; pending--; }));
      await Promise.race([Promise.all(all), check.then(() => { settledInTurn = pending === 0; })]);
      await Promise.all(all);
      assert.ok(settledInTurn, 'calls waited beyond the current turn of the event loop');
      await new Promise(resolve => setTimeout(resolve, 15));
    }
    assert.equal(breaker.opened, true);
    await waitFor('the reporter failing and coalescing', 10000, () =>
      reporter.snapshot().failedAttempts > 0 && reporter.snapshot().drops.aggregates_coalesced > 0);
    const held = reporter.pendingAggregates.length + reporter.pendingTransitions.length;
    assert.ok(held <= maxBuffered, `holds ${held} items, over ${maxBuffered}`);

    await down.resume();
    await waitFor('everything acknowledged', 20000, () => reporter.snapshot().pendingItems === 0);
    const toMs = Date.now() + 1000;
    const series = await down.get(`/api/v1/breakers/node-down/db/series?from_ms=${fromMs}&to_ms=${toMs}`);
    const total = series.points.reduce((sum, p) => ({
      success: sum.success + p.counts.success, failure: sum.failure + p.counts.failure, rejected: sum.rejected + p.counts.rejected
    }), { success: 0, failure: 0, rejected: 0 });
    assert.deepEqual(total, { success: outcomes.ok, failure: outcomes['dependency down'], rejected: outcomes.EOPENBREAKER });
    const log = await down.get('/api/v1/breakers/node-down/db/transitions');
    assert.equal(log[0].to, 'open');
    assert.equal(log[0].trigger.kind, 'failure_rate');
    assert.equal((await down.breaker('node-down', 'db')).state, 'open');
  } finally {
    await reporter.close();
    await down.close();
  }
});

test('a 503 with Retry-After holds the next attempt back that long, then the same batch is sent', async () => {
  const http = require('node:http');
  const attempts = [];
  const busy = http.createServer((request, response) => {
    let body = '';
    request.on('data', chunk => { body += chunk; });
    request.on('end', () => {
      if (request.url !== '/api/v1/ingest') {
        response.writeHead(404).end();
        return;
      }
      const batch = JSON.parse(body);
      attempts.push({ atMs: Date.now(), batch });
      if (attempts.length === 1) {
        response.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
        response.end('{"error":"overloaded","detail":"queue full"}');
      } else {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ seq: batch.seq, duplicate: false }));
      }
    });
  });
  await new Promise(resolve => busy.listen(0, '127.0.0.1', resolve));
  const { breaker } = breakerFor('busy');
  const reporter = fusebox.attach(breaker, {
    url: `http://127.0.0.1:${busy.address().port}`, key: 'fbk_test', service: SERVICE, instance: 'node-1',
    intervalMs: 50, followConfigs: false, onWarning: () => {}
  });
  try {
    await waitFor('the batch acknowledged after the refusal', 10000, () => reporter.snapshot().batchesAcked > 0);
    // The same batch: its number and all of its content.
    assert.deepEqual(attempts[1].batch, attempts[0].batch);
    assert.ok(attempts[1].atMs - attempts[0].atMs >= 1000, `retried after ${attempts[1].atMs - attempts[0].atMs} ms`);
  } finally {
    await reporter.close();
    busy.close();
  }
});

test('a key Node will not send, a throwing onWarning and a throwing listener crash nothing, and reporting resumes', async () => {
  const http = require('node:http');
  const escaped = [];
  const onEscaped = error => escaped.push(String(error));
  process.on('unhandledRejection', onEscaped);
  process.on('uncaughtException', onEscaped);
  const configs = [
    opossumConfig({ version: 1, failure_rate_threshold: 0.4, mode: 'forced_open' }),
    opossumConfig({ version: 2, failure_rate_threshold: 0.3 })
  ];
  let nConfigPolls = 0;
  const fake = http.createServer((request, response) => {
    let body = '';
    request.on('data', chunk => { body += chunk; });
    request.on('end', () => {
      let answer = '{}';
      if (request.url === '/api/v1/ingest') {
        answer = JSON.stringify({ seq: JSON.parse(body).seq, duplicate: false });
      } else if (request.url.startsWith('/api/v1/config/')) {
        const above = Number(new URL(request.url, 'http://x').searchParams.get('wait_for_version_above'));
        const next = configs.find(config => config.version > above);
        nConfigPolls++;
        if (!next) {
          response.writeHead(204).end();
          return;
        }
        answer = JSON.stringify(next);
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(answer);
    });
  });
  await new Promise(resolve => fake.listen(0, '127.0.0.1', resolve));
  const { breaker } = breakerFor('throwing');
  let nOpenThrows = 0;
  breaker.on('open', () => {
    if (nOpenThrows++ === 0) throw new Error('a listener of the service threw');
  });
  const reporter = fusebox.attach(breaker, {
    url: `http://127.0.0.1:${fake.address().port}`,
    // A trailing newline: Node refuses the header (ERR_INVALID_CHAR) before any request.
    key: 'fbk_test\n',
    service: SERVICE,
    instance: 'node-1',
    intervalMs: 20,
    minBackoffMs: 10,
    maxBackoffMs: 50,
    pollTimeoutMs: 1000,
    onWarning: () => { throw new Error('onWarning threw'); }
  });
  try {
    await waitFor('attempts retried after the key was refused', 10000, () => reporter.snapshot().failedAttempts >= 2);
    assert.equal(reporter.snapshot().batchesAcked, 0);
    reporter.options.key = 'fbk_test';
    await waitFor('a batch acknowledged once the key is fixed', 10000, () => reporter.snapshot().batchesAcked > 0);
    // The forced open made the listener throw once; the config is asked for again and the next one follows.
    await waitFor('the second config applied', 10000, () => breaker.options.errorThresholdPercentage === 30 && !breaker.opened);
    assert.ok(nOpenThrows >= 1 && nConfigPolls >= 3);
    assert.deepEqual(escaped, []);
  } finally {
    process.removeListener('unhandledRejection', onEscaped);
    process.removeListener('uncaughtException', onEscaped);
    await reporter.close();
    fake.close();
  }
});

test('a breaker the reporter refuses keeps no listener of the binding', async () => {
  const { breaker } = breakerFor('refused-twice');
  const reporter = attach(breaker, { followConfigs: false });
  const other = new CircuitBreaker(async () => 'ok', { name: 'refused-twice' });
  const before = other.listenerCount('success') + other.listenerCount('open');
  assert.throws(() => reporter.add(other), /already reported/);
  assert.equal(other.listenerCount('success') + other.listenerCount('open'), before);
});

test('a batch with more behind it asks for an early answer, and a 202 counts as acknowledged', async () => {
  const http = require('node:http');
  let up = false;
  const answered = []; // [seq, asked for an early answer, status] while up
  const stand = http.createServer((request, response) => {
    let body = '';
    request.on('data', chunk => { body += chunk; });
    request.on('end', () => {
      const batch = JSON.parse(body);
      const asked = request.headers.prefer === 'respond-async';
      if (!up) {
        response.writeHead(503, { 'content-type': 'application/json' });
        response.end('{"error":"overloaded","detail":"down"}');
        return;
      }
      // As the server does when it journals a batch: 202 for one that asks.
      const status = asked ? 202 : 200;
      answered.push([batch.seq, asked, status]);
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ seq: batch.seq, duplicate: false }));
    });
  });
  await new Promise(resolve => stand.listen(0, '127.0.0.1', resolve));
  const { breaker } = breakerFor('backlog');
  const reporter = fusebox.attach(breaker, {
    url: `http://127.0.0.1:${stand.address().port}`, key: 'fbk_test', service: SERVICE, instance: 'node-1',
    intervalMs: 3600000, followConfigs: false, maxBatchItems: 1, minBackoffMs: 10, maxBackoffMs: 50,
    onWarning: () => {}
  });
  try {
    // Four transitions queue up while the server refuses.
    for (let i = 0; i < 2; i++) {
      breaker.open();
      breaker.close();
    }
    await waitFor('a refused attempt', 10000, () => reporter.snapshot().failedAttempts > 0);
    up = true;
    await waitFor('everything acknowledged', 10000, () => reporter.snapshot().pendingItems === 0);
    assert.equal(reporter.snapshot().batchesAcked, 4);
    assert.deepEqual(answered.map(([, asked]) => asked), [true, true, true, false], JSON.stringify(answered));
    assert.deepEqual(answered.map(([, , status]) => status), [202, 202, 202, 200], JSON.stringify(answered));
  } finally {
    await reporter.close();
    stand.close();
  }
});
