// One import for tests: real servers started privately on 127.0.0.1, and the skip policy.
export { startNginx, type NginxServer, type NginxLogEntry, type NginxOptions } from './nginx.js';
export { startSshd, type SshdServer } from './sshd.js';
export { startRabbitmq, type RabbitmqServer } from './rabbitmq.js';
export { startMosquitto, type MosquittoServer } from './mosquitto.js';
export { requireTool, findTool } from './require-tool.js';
export { freePort, canConnect } from './ports.js';
