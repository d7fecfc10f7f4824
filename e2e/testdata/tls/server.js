// An HTTPS server: Node.js https, keep-alive.
// Usage: node server.js CERT KEY. Prints "READY 127.0.0.1:PORT".
// /status/N answers N; /big answers 1 MiB; POST reads the body and
// answers "ok"; anything else answers "hello".
const https = require('https');
const fs = require('fs');

const big = Buffer.alloc(1 << 20, 'x');
const srv = https.createServer({cert: fs.readFileSync(process.argv[2]), key: fs.readFileSync(process.argv[3])}, (req, res) => {
  req.resume();
  req.on('end', () => {
    const m = req.url.match(/^\/status\/(\d+)$/);
    if (m) {
      res.writeHead(+m[1], {'Content-Length': 0});
      res.end();
    } else if (req.url === '/big') {
      res.writeHead(200, {'Content-Length': big.length});
      res.end(big);
    } else if (req.method === 'POST') {
      res.writeHead(200, {'Content-Length': 2});
      res.end('ok');
    } else {
      res.writeHead(200, {'Content-Length': 5});
      res.end('hello');
    }
  });
});
srv.keepAliveTimeout = 60000;
srv.listen(0, '127.0.0.1', () => console.log('READY 127.0.0.1:' + srv.address().port));
