// The zsync backend: forks the installed C tools. zsyncmake writes into a temporary file beside
// the output; we parse it back before renaming, so a killed or misbehaving zsyncmake never
// leaves a half .zsync newer than its source.

import { ZpumpError } from '../errors.js';
import { writeVerifiedControlFile } from '../local/control-file-io.js';
import { requireTool } from './locate.js';
import type { Backend, MakeRequest, MakeResult, SyncRequest, SyncResult } from './types.js';
import { zsyncClientSync } from './zsync-sync.js';

export function createZsyncBackend(): Backend {
  return {
    name: 'zsync',
    async make(request: MakeRequest): Promise<MakeResult> {
      const tool = await requireTool('zsyncmake');
      const { execa } = await import('execa');
      let signatureBytes = 0;
      const cf = await writeVerifiedControlFile(request.output, async (handle, tempPath) => {
        await handle.close();
        const args = ['-b', String(request.blockSize), '-o', tempPath, '-f', request.filename];
        for (const url of request.urls) args.push('-u', url);
        args.push(request.input);
        const run = await execa(tool.path, args, { reject: false, stdin: 'ignore', all: true });
        if (run.exitCode !== 0 || run.signal) {
          const said = (run.all ?? '').trim().split('\n').slice(-3).join(' / ');
          throw new ZpumpError('E_BACKEND', `zsyncmake failed on ${request.input} (${run.signal ? `killed by ${run.signal}` : `exit ${run.exitCode}`})${said ? `: ${said}` : ''}`, {
            data: { exitCode: run.exitCode, tool: tool.path },
          });
        }
        const { size } = await (await import('node:fs/promises')).stat(tempPath);
        signatureBytes = size;
      });
      return {
        engine: 'zsync',
        output: request.output,
        length: cf.length,
        blockSize: cf.blockSize,
        records: Math.ceil(cf.length / cf.blockSize),
        signatureBytes,
        sha1: cf.sha1 ?? '',
      };
    },
    sync(request: SyncRequest): Promise<SyncResult> {
      return zsyncClientSync(request);
    },
  };
}
