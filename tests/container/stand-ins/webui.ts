/**
 * open-webui-shaped app of the container test (until `ratls demo webui` is on main): its health
 * route and a page at /, on the port the real image uses. Chat in this stack goes through the
 * proxy's /ollama/ route, as deploy/compose.yaml routes it.
 */
import { createServer } from 'node:http';

const [host, port] = (process.env.LISTEN ?? '0.0.0.0:8080').split(':');
const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":true}');
  if (path === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Open WebUI</title><p>open-webui stand-in</p>');
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not Found"}');
});
server.listen(Number(port), host, () => console.log(`open-webui stand-in listening on ${host}:${port}`));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
