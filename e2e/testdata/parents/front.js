// A Node.js front service: GET /call/{id} calls GET /work/{id} on the
// backend (argv[2], host:port) over keep-alive connections and answers
// with what the backend said. It listens on 127.0.0.1, on $PARENTS_PORT or
// any port, and prints "READY <addr>" once it does.
'use strict';
const http = require('http');

const [host, port] = process.argv[2].split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

const server = http.createServer((req, res) => {
  const id = req.url.slice(req.url.lastIndexOf('/') + 1);
  const call = http.get({ host, port, path: '/work/' + id, agent }, (back) => {
    const parts = [];
    back.on('data', (d) => parts.push(d));
    back.on('end', () => res.end(Buffer.concat(parts)));
  });
  call.on('error', () => { res.statusCode = 502; res.end(); });
});
server.keepAliveTimeout = 30000;
server.listen(Number(process.env.PARENTS_PORT || 0), '127.0.0.1', () => {
  const a = server.address();
  console.log(`READY ${a.address}:${a.port}`);
});
