// The search conformance suite on PGlite (the embedded profile's database).
import { pgliteClient, PostgresSearch, singleRouting } from '../../adapters/postgres/query.ts';
import { describeSearch } from '../conformance/search.ts';

describeSearch('PostgreSQL full-text on PGlite', async () => {
  const client = await pgliteClient();
  const index = new PostgresSearch(singleRouting(client));
  return { index, close: () => client.close() };
});
