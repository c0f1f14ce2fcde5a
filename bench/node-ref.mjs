// The Node.js reference: a bare http server answering every request with
// the same JSON body from memory (what the seed's runtime could do at
// most). Prints "listening <port>" once ready.
//   node bench/node-ref.mjs BODY_FILE
import http from 'node:http';
import fs from 'node:fs';

const body = fs.readFileSync(process.argv[2]);
const server = http.createServer((req, res) => {
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.length,
  });
  res.end(body);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
