// A Node.js http2 server over cleartext: prints its port.
const http2 = require('http2');

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  if (path.startsWith('/hello')) {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('hello');
  } else if (path === '/upload') {
    let n = 0;
    stream.on('data', (d) => { n += d.length; });
    stream.on('end', () => {
      stream.respond({ ':status': 201 });
      stream.end(String(n));
    });
  } else if (path === '/trailers') {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
    stream.end('body');
  } else {
    stream.respond({ ':status': 404 });
    stream.end();
  }
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
