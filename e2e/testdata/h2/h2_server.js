// A Node.js http2 server over cleartext (prior knowledge). Prints
// "READY 127.0.0.1:<port>".
//   GET /hello         200 "hello"
//   POST /upload       201, the count of bytes read
//   /status/NNN        NNN
//   DELETE /items/N    204
//   GET /trailers      200 "body", then trailers
//   anything else      404
const http2 = require('http2');

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  const method = headers[':method'];
  let m;
  if (method === 'POST' && path === '/upload') {
    let n = 0;
    stream.on('data', (d) => { n += d.length; });
    stream.on('end', () => {
      stream.respond({ ':status': 201 });
      stream.end(String(n));
    });
  } else if ((m = path.match(/^\/status\/(\d{3})$/))) {
    stream.respond({ ':status': Number(m[1]) });
    stream.end();
  } else if (method === 'DELETE' && path.startsWith('/items/')) {
    stream.respond({ ':status': 204 });
    stream.end();
  } else if (path === '/trailers') {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
    stream.end('body');
  } else if (path.startsWith('/hello')) {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('hello');
  } else {
    stream.respond({ ':status': 404 });
    stream.end();
  }
});
server.listen(0, '127.0.0.1', () => console.log(`READY 127.0.0.1:${server.address().port}`));
