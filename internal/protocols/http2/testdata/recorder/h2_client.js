// A Node.js http2 client: four requests in order, then three at once, on
// one session.
//   1 GET /hello 200, 3 POST /upload (100000 bytes) 201, 5 GET /missing 404,
//   7 GET /trailers 200 (with trailers), 9 11 13 GET /hello?i=N 200.
const http2 = require('http2');

const client = http2.connect('http://' + process.argv[2]);
client.on('error', (e) => { console.error(e); process.exit(1); });

function request(headers, body, want) {
  return new Promise((resolve, reject) => {
    const req = client.request(headers);
    req.on('response', (h) => {
      if (h[':status'] !== want) reject(new Error(`${headers[':path']}: ${h[':status']}`));
    });
    req.on('data', () => {});
    req.on('end', resolve);
    req.on('error', reject);
    req.end(body);
  });
}

(async () => {
  await request({ ':path': '/hello' }, undefined, 200);
  await request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' }, Buffer.alloc(100000), 201);
  await request({ ':path': '/missing' }, undefined, 404);
  await request({ ':path': '/trailers' }, undefined, 200);
  await Promise.all([0, 1, 2].map((i) => request({ ':path': `/hello?i=${i}` }, undefined, 200)));
  client.close();
})().catch((e) => { console.error(e); process.exit(1); });
