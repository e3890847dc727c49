// Follow approval's events: print each one as a JSON line, then ack it.
//
//     DATABASE_URL=postgresql://listener@/app node listener.js mailer
//
// DATABASE_URL is a connection URL (unset: the PG* variables); the argument
// names the cursor in approval.subscriber.  Needs node-postgres (npm i pg).
'use strict';
const { Client } = require('pg');

const NAME = process.argv[2] || 'example';
const BATCH = 100;        // rows per events_after() call
const IDLE = 30000;       // ms to wait without a notification (notify = off)
let stopping = false;
let wake = () => {};      // ends the current wait early

function pause(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => { clearTimeout(timer); resolve(); };
  });
}
const print = (line) => new Promise((resolve, reject) =>
  process.stdout.write(line + '\n', (err) => (err ? reject(err) : resolve())));
process.on('SIGTERM', () => { stopping = true; wake(); });

async function follow(client) {
  let woken = false;      // a notification is only a wake-up
  client.on('notification', () => { woken = true; wake(); });
  await client.query('LISTEN approval');        // first LISTEN, then read
  const { rows: [row] } = await client.query(
    'SELECT last_seq FROM approval.subscriber WHERE name = $1', [NAME]);
  let cursor = row ? row.last_seq : '0';        // bigints come as strings
  while (!stopping) {
    woken = false;
    const { rows } = await client.query(
      'SELECT e.seq, approval.event_json(e)::text AS json' +
      ' FROM approval.events_after($1, $2) e', [cursor, BATCH]);
    for (const { seq, json } of rows) {
      if (stopping) return;
      await print(json);                        // the side effect, then the ack
      await client.query('SELECT approval.ack($1, $2)', [NAME, seq]);
      cursor = seq;
    }
    if (rows.length < BATCH && !woken) await pause(IDLE);
  }
}

async function main() {
  for (let delay = 1; !stopping; delay = Math.min(delay * 2, 30)) {
    const client = new Client({ connectionString: process.env.DATABASE_URL });
    client.on('error', (err) => { console.error(`listener: ${err.message}`); wake(); });
    try {
      await client.connect();
      delay = 1;
      await follow(client);
    } catch (err) {
      console.error(`listener: ${err.message}`);
    }
    await client.end().catch(() => {});
    if (!stopping) {
      console.error(`listener: reconnecting in ${delay} s`);
      await pause(delay * 1000);
    }
  }
}

main();
