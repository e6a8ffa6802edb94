// The search conformance suite on a real PostgreSQL 15 server (test/helpers/postgres.ts).
import { after, before } from 'node:test';
import pg from 'pg';
import { pgPoolClient, PostgresSearch, singleRouting } from '../../adapters/postgres/query.ts';
import { describeSearch } from '../conformance/search.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';

let server: PostgresServer;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
});

describeSearch('PostgreSQL full-text on PostgreSQL 15', async () => {
  const pool = new pg.Pool({ connectionString: server.url, max: 4 });
  pool.on('error', () => {});
  const client = pgPoolClient(pool);
  return { index: new PostgresSearch(singleRouting(client)), close: () => client.close() };
});
