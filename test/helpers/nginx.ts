// nginx (Debian's nginx-light) serving a directory over HTTP(S) byte ranges, with a per-request access log
// that tells exactly how many bytes a client fetched.
import { execFile } from 'node:child_process';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { launch, makeTempDir, waitUntilReady } from './daemon.js';
import { canConnect, freePort } from './ports.js';
import { findTool } from './require-tool.js';

const run = promisify(execFile);

export interface NginxLogEntry {
  method: string;
  path: string;
  status: number;
  /** The request's Range header, '' when none. */
  range: string;
  /** $bytes_sent: headers and body. */
  bytesSent: number;
  /** $body_bytes_sent: body only (for multipart ranges, includes the part headers and boundaries). */
  bodyBytesSent: number;
  /** $connection: the same number for requests on one keep-alive connection. */
  connection: number;
  /** $connection_requests: 1 for the first request on a connection. */
  connectionRequests: number;
  userAgent: string;
}

export interface NginxServer {
  port: number;
  /** http(s)://127.0.0.1:PORT/ */
  url: string;
  /** PEM file of the self-signed CA, when tls. */
  caFile?: string;
  logPath: string;
  /** Entries of every finished request so far (waits for requests in flight to be logged). */
  readLog(): Promise<NginxLogEntry[]>;
  /** Forget the entries so far (after requests in flight are logged). */
  clearLog(): Promise<void>;
  stop(): Promise<void>;
}

export interface NginxOptions {
  root: string;
  tls?: boolean;
  /** nginx's max_ranges: above it, a multi-range request gets the whole file (200). */
  maxRanges?: number;
  /** nginx's limit_rate (bytes per second per connection), to make transfers slow enough to interrupt. */
  limitRate?: number;
}

// escape=json keeps every field a valid JSON string whatever the client sent.
const LOG_FORMAT =
  `'{"method":"$request_method","path":"$uri","status":"$status","range":"$http_range",' ` +
  `'"bytesSent":"$bytes_sent","bodyBytesSent":"$body_bytes_sent","connection":"$connection",' ` +
  `'"connectionRequests":"$connection_requests","userAgent":"$http_user_agent"}'`;

async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '7',
    '-subj', '/CN=zpump test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(f('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' +
    'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-out', f('server.pem'), '-days', '7', '-extfile', f('server.ext')]);
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** stub_status "Writing" counts requests not yet finished (and logged), our own status request included. */
async function requestsInFlight(statusPort: number): Promise<number> {
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: statusPort, path: '/', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.setTimeout(2000, () => req.destroy(new Error('stub_status timed out')));
  });
  const m = /Writing:\s*(\d+)/.exec(body);
  if (!m) throw new Error(`unexpected stub_status answer: ${body}`);
  return Number(m[1]) - 1;
}

function parseLog(text: string): NginxLogEntry[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const r = JSON.parse(line) as Record<string, string>;
      return {
        method: r.method ?? '',
        path: r.path ?? '',
        status: Number(r.status),
        range: r.range ?? '',
        bytesSent: Number(r.bytesSent),
        bodyBytesSent: Number(r.bodyBytesSent),
        connection: Number(r.connection),
        connectionRequests: Number(r.connectionRequests),
        userAgent: r.userAgent ?? '',
      };
    });
}

export async function startNginx(opts: NginxOptions): Promise<NginxServer> {
  const nginx = findTool('nginx');
  if (!nginx) throw new Error('nginx is not installed (apt-get install nginx-light)');
  const tmp = await makeTempDir('nginx');
  const dir = tmp.dir;
  try {
    const [port, statusPort] = [await freePort(), await freePort()];
    const certs = opts.tls ? await makeCertificates(dir) : undefined;
    await mkdir(path.join(dir, 'temp'));
    const logPath = path.join(dir, 'access.log');
    const isRoot = process.getuid?.() === 0;
    const conf = `
daemon off;
master_process on;
worker_processes 1;
${isRoot ? 'user root;  # workers must read files in 0700 temp dirs' : ''}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 512; }
http {
  default_type application/octet-stream;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  log_format zpump escape=json ${LOG_FORMAT};
  server {
    listen 127.0.0.1:${port}${certs ? ' ssl' : ''};
    server_name localhost;
    root ${path.resolve(opts.root)};
    access_log ${logPath} zpump;
    ${opts.maxRanges !== undefined ? `max_ranges ${opts.maxRanges};` : ''}
    ${opts.limitRate !== undefined ? `limit_rate ${opts.limitRate};` : ''}
    ${certs ? `ssl_certificate ${certs.cert}; ssl_certificate_key ${certs.key};` : ''}
    location / { }
  }
  # Separate plain-HTTP server so that readLog() can see when requests are finished, without log noise.
  server {
    listen 127.0.0.1:${statusPort};
    access_log off;
    location / { stub_status; }
  }
}
`;
    const confPath = path.join(dir, 'nginx.conf');
    await writeFile(confPath, conf);
    await writeFile(logPath, '');
    // -e: without it nginx first opens the system error log (/var/log/nginx/error.log).
    const daemon = await launch('nginx', nginx, ['-e', `${dir}/error.log`, '-p', `${dir}/`, '-c', confPath], {
      logPath: path.join(dir, 'error.log'),
      cwd: dir,
    });
    try {
      await waitUntilReady(daemon, async () => (await canConnect(port)) && (await canConnect(statusPort)), 10_000);
    } catch (e) {
      await daemon.stop();
      throw e;
    }

    const settle = async () => {
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline && (await requestsInFlight(statusPort)) > 0) await sleep(10);
    };
    return {
      port,
      url: `${certs ? 'https' : 'http'}://127.0.0.1:${port}/`,
      caFile: certs?.ca,
      logPath,
      async readLog() {
        await settle();
        return parseLog(await readFile(logPath, 'utf8'));
      },
      async clearLog() {
        await settle();
        // nginx appends (O_APPEND), so after truncation it writes at the new end: no reopen needed.
        await truncate(logPath, 0);
      },
      async stop() {
        await daemon.stop();
        await tmp.remove();
      },
    };
  } catch (e) {
    await tmp.remove();
    throw e;
  }
}
