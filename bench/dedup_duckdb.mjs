// Exact dedup baseline for bench/dedup_bench.sh: DuckDB keeps one row per
// hash(text) of a zstd JSONL input and writes zstd JSONL, on one thread.
//   node bench/dedup_duckdb.mjs IN.jsonl.zst OUT.jsonl.zst
// Prints nothing on success; count the output lines to check it.
import { DuckDBInstance } from '@duckdb/node-api';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
    console.error('usage: node dedup_duckdb.mjs IN.jsonl.zst OUT.jsonl.zst');
    process.exit(2);
}
const quote = (s) => "'" + s.replaceAll("'", "''") + "'";
const instance = await DuckDBInstance.create(':memory:');
const con = await instance.connect();
await con.run('SET threads = 1');
await con.run(
    `COPY (SELECT DISTINCT ON (hash(text)) * FROM read_json(${quote(input)},
            format = 'newline_delimited', compression = 'zstd',
            columns = {id: 'VARCHAR', text: 'VARCHAR'}))
     TO ${quote(output)} (FORMAT json, COMPRESSION zstd)`);
