// Neon's own serverless driver (@neondatabase/serverless) against the
// sql-proxy: every request signed as the proxy requires (its fetchFunction),
// values read back through the driver's own type parsers.
//
// Run by infra/sql-proxy/tests/proxy.rs with PROXY_URL (…/sql), PROXY_KEY
// (kid:base64url) and DATABASE_URL set; exits non-zero on any failure.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { neon, neonConfig } from '@neondatabase/serverless';

const { PROXY_URL, PROXY_KEY, DATABASE_URL } = process.env;
if (!PROXY_URL || !PROXY_KEY || !DATABASE_URL) {
  throw new Error('PROXY_URL, PROXY_KEY and DATABASE_URL must be set');
}

// The headers the proxy's signature covers, in its order (see
// shared/src/db/signing.rs).
const SIGNED = [
  'neon-connection-string',
  'neon-raw-text-output',
  'neon-array-mode',
  'neon-batch-isolation-level',
  'neon-batch-read-only',
  'neon-batch-deferrable',
];
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
const [kid, encoded] = PROXY_KEY.split(':');
const secret = Buffer.from(encoded, 'base64url');

function signature(path, headers, body) {
  const ts = Math.floor(Date.now() / 1000);
  const nonce = randomBytes(16).toString('hex');
  const lower = Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
  let text = `antevus-sql-proxy-v1\n${ts}\n${nonce}\nPOST\n${path}\n${sha256(body)}\n`;
  for (const name of SIGNED) text += `${name}:${lower[name] ?? ''}\n`;
  const sig = createHmac('sha256', secret).update(text, 'utf8').digest('hex');
  return `v1,key=${kid},ts=${ts},nonce=${nonce},sig=${sig}`;
}

neonConfig.fetchEndpoint = () => PROXY_URL;
neonConfig.fetchFunction = (url, init) => {
  const headers = {
    ...init.headers,
    'Antevus-Proxy-Signature': signature(new URL(url).pathname, init.headers, init.body),
  };
  return fetch(url, { ...init, headers });
};

const sql = neon(DATABASE_URL);

test('integers, bigints beyond 2^53, numeric and floats', async () => {
  const [row] = await sql`
    SELECT 7::int2 AS small, (-2147483648)::int4 AS int, 9007199254740993::int8 AS big,
           123456789012345678901234567890.125::numeric AS exact, 0.1::float8 AS tenth,
           'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, '-Infinity'::float4 AS minus_inf,
           1e300::float8 AS huge`;
  assert.equal(row.small, 7);
  assert.equal(row.int, -2147483648);
  assert.equal(row.big, '9007199254740993');
  assert.equal(row.exact, '123456789012345678901234567890.125');
  assert.equal(row.tenth, 0.1);
  assert.ok(Number.isNaN(row.nan));
  assert.equal(row.inf, Infinity);
  assert.equal(row.minus_inf, -Infinity);
  assert.equal(row.huge, 1e300);
});

test('text and arrays with quotes, commas and NULLs', async () => {
  const tricky = 'he said "hi", then \\ left';
  const [row] = await sql`
    SELECT ${tricky}::text AS text,
           ${['a,b', 'say "hi"', null, '', 'NULL', 'back\\slash', 'two words']}::text[] AS words,
           ARRAY[1, NULL, 3]::int4[] AS numbers, ARRAY[[1, 2], [3, 4]]::int4[] AS grid,
           ARRAY[9007199254740993, NULL]::int8[] AS bigs, '{}'::text[] AS empty`;
  assert.equal(row.text, tricky);
  assert.deepEqual(row.words, ['a,b', 'say "hi"', null, '', 'NULL', 'back\\slash', 'two words']);
  assert.deepEqual(row.numbers, [1, null, 3]);
  assert.deepEqual(row.grid, [[1, 2], [3, 4]]);
  assert.deepEqual(row.bigs, ['9007199254740993', null]);
  assert.deepEqual(row.empty, []);
});

test('bytea, dates, times, intervals, uuid, json and inet', async () => {
  const bytes = Buffer.from([0, 1, 254, 255]);
  const [row] = await sql`
    SELECT ${bytes}::bytea AS bytes, '2026-03-01'::date AS day,
           '2026-01-02 03:04:05.123'::timestamp AS local,
           '2026-01-02 03:04:05.5+02'::timestamptz AS instant,
           '1 year 2 mons 3 days 04:05:06.5'::interval AS span,
           '-1 days +02:00:00'::interval AS back,
           '6f1c1f4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f'::uuid AS id,
           '{"k": [1, "two", null]}'::jsonb AS doc, '[1, 2]'::json AS list,
           '192.168.0.0/24'::inet AS net, '2001:db8::1'::inet AS v6`;
  assert.deepEqual(row.bytes, bytes);
  assert.equal(row.day.getTime(), new Date(2026, 2, 1).getTime());
  assert.equal(row.local.getTime(), new Date(2026, 0, 2, 3, 4, 5, 123).getTime());
  assert.equal(row.instant.toISOString(), '2026-01-02T01:04:05.500Z');
  assert.equal(row.span.years, 1);
  assert.equal(row.span.months, 2);
  assert.equal(row.span.days, 3);
  assert.equal(row.span.hours, 4);
  assert.equal(row.span.minutes, 5);
  assert.equal(row.span.seconds, 6);
  assert.equal(row.span.milliseconds, 500);
  assert.equal(row.back.days, -1);
  assert.equal(row.back.hours, 2);
  assert.equal(row.id, '6f1c1f4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f');
  assert.deepEqual(row.doc, { k: [1, 'two', null] });
  assert.deepEqual(row.list, [1, 2]);
  assert.equal(row.net, '192.168.0.0/24');
  assert.equal(row.v6, '2001:db8::1');
});

test('fullResults and arrayMode', async () => {
  const full = await sql.query('SELECT $1::int4 AS n, $2::text AS s', [42, 'x'], {
    fullResults: true,
  });
  assert.equal(full.command, 'SELECT');
  assert.equal(full.rowCount, 1);
  assert.deepEqual(full.fields.map((f) => [f.name, f.dataTypeID]), [['n', 23], ['s', 25]]);
  assert.deepEqual(full.rows, [{ n: 42, s: 'x' }]);
  const rows = await sql.query('SELECT 1 AS a, 2 AS b', [], { arrayMode: true });
  assert.deepEqual(rows, [[1, 2]]);
});

test('transactions commit together or not at all', async () => {
  await sql`CREATE TABLE IF NOT EXISTS neon_driver (id int4 PRIMARY KEY, note text)`;
  await sql`DELETE FROM neon_driver`;
  const [inserted, counted] = await sql.transaction(
    [
      sql`INSERT INTO neon_driver VALUES (1, 'one') RETURNING id`,
      sql`SELECT count(*)::int4 AS n FROM neon_driver`,
    ],
    { isolationLevel: 'Serializable' },
  );
  assert.deepEqual(inserted, [{ id: 1 }]);
  assert.deepEqual(counted, [{ n: 1 }]);
  await assert.rejects(
    sql.transaction([
      sql`INSERT INTO neon_driver VALUES (2, 'two')`,
      sql`INSERT INTO neon_driver VALUES (1, 'again')`,
    ]),
    (error) => error.code === '23505' && error.constraint === 'neon_driver_pkey',
  );
  const [{ n }] = await sql`SELECT count(*)::int4 AS n FROM neon_driver`;
  assert.equal(n, 1, 'the failed transaction left nothing');
});

test('read-only transactions refuse writes', async () => {
  const [[{ one }]] = await sql.transaction([sql`SELECT 1 AS one`], { readOnly: true });
  assert.equal(one, 1);
  await assert.rejects(
    sql.transaction([sql`INSERT INTO neon_driver VALUES (3, 'three')`], { readOnly: true }),
    (error) => error.code === '25006',
  );
});

test('errors carry PostgreSQL fields', async () => {
  await assert.rejects(sql`SELECT * FROM no_such_table`, (error) => {
    assert.equal(error.code, '42P01');
    assert.equal(error.severity, 'ERROR');
    assert.equal(error.position, '15');
    assert.match(error.message, /no_such_table/);
    assert.ok(error.file, 'the source file PostgreSQL reports');
    assert.ok(error.routine, 'the routine PostgreSQL reports');
    return true;
  });
  await assert.rejects(sql`SELECT ${'seven'}::int4`, (error) => error.code === '22P02');
});
