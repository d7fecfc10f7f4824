// A Node.js http2 client of h2_server.js: the requests below in order on
// one session, then five at once, then "DONE <requests not answered as
// expected>".
//   GET /hello x2 200, POST /upload (100000 bytes) 201, GET /status/404,
//   GET /status/500, DELETE /items/7 204, GET /trailers 200,
//   GET /hello?i=N x5 200 at once.
const http2 = require('http2');

const client = http2.connect('http://' + process.argv[2]);
client.on('error', (e) => { console.error(e); process.exit(1); });
let failed = 0;

function request(headers, body, want) {
  return new Promise((resolve) => {
    const req = client.request(headers);
    let status = 0;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', () => {});
    req.on('end', () => {
      if (status !== want) {
        console.error(`${headers[':path']}: ${status}, want ${want}`);
        failed++;
      }
      resolve();
    });
    req.on('error', (e) => { console.error(e); failed++; resolve(); });
    req.end(body);
  });
}

(async () => {
  await request({ ':path': '/hello' }, undefined, 200);
  await request({ ':path': '/hello' }, undefined, 200);
  await request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' }, Buffer.alloc(100000), 201);
  await request({ ':path': '/status/404' }, undefined, 404);
  await request({ ':path': '/status/500' }, undefined, 500);
  await request({ ':method': 'DELETE', ':path': '/items/7' }, undefined, 204);
  await request({ ':path': '/trailers' }, undefined, 200);
  await Promise.all([0, 1, 2, 3, 4].map((i) => request({ ':path': `/hello?i=${i}` }, undefined, 200)));
  client.close();
  console.log(`DONE ${failed}`);
})();
