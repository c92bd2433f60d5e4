/**
 * mbox (mboxo/mboxrd) parsing into mail messages, and of a patch series' subjects.
 */
export interface MailMessage {
  /** Position in the mbox, from 0. */
  index: number;
  /** Lower-cased header name -> values (unfolded), in order. */
  headers: Map<string, string[]>;
  subject: string;
  messageId: string | undefined;
  from: string | undefined;
  date: string | undefined;
  body: string;
}

const FROM_LINE = /^From \S+ +\S.*$/;

/** Split an mbox into messages. "From " separator lines follow a blank line (or start the file). */
export function parseMbox(text: string): MailMessage[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const chunks: string[][] = [];
  let cur: string[] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (FROM_LINE.test(l) && (i === 0 || lines[i - 1] === '')) {
      cur = [];
      chunks.push(cur);
      continue;
    }
    if (cur) cur.push(l);
  }
  return chunks.map((c, index) => parseMessage(c, index));
}

function parseMessage(lines: string[], index: number): MailMessage {
  const headers = new Map<string, string[]>();
  let i = 0;
  let last: string | undefined;
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === '') {
      i++;
      break;
    }
    if (/^[ \t]/.test(l) && last) {
      const vals = headers.get(last)!;
      vals[vals.length - 1] += ' ' + l.trim();
      continue;
    }
    const m = /^([^:\s]+):\s?(.*)$/.exec(l);
    if (!m) continue;
    last = m[1]!.toLowerCase();
    if (!headers.has(last)) headers.set(last, []);
    headers.get(last)!.push(m[2]!);
  }
  // mboxrd/mboxo escaping of body lines that start with "From ".
  const bodyLines = lines.slice(i).map((l) => (/^>+From /.test(l) ? l.slice(1) : l));
  while (bodyLines.length && bodyLines[bodyLines.length - 1] === '') bodyLines.pop();
  const h = (n: string) => headers.get(n)?.[0]?.trim();
  return {
    index,
    headers,
    subject: (h('subject') ?? '').replace(/\s+/g, ' '),
    messageId: h('message-id')?.replace(/^<|>$/g, ''),
    from: h('from'),
    date: h('date'),
    body: bodyLines.join('\n') + '\n',
  };
}

export interface SubjectInfo {
  /** Text inside the brackets before NN/MM, e.g. "RFC V2" or "RFC V2 5.10.223". */
  prefix: string;
  number: number;
  total: number;
  title: string;
}

export function parseSubject(subject: string): SubjectInfo | undefined {
  const m = /^(?:(?:Re|Fwd):\s*)?\[([^\]]*?)\s*(\d+)\/(\d+)\]\s*(.*)$/i.exec(subject.trim());
  if (!m) return undefined;
  return { prefix: m[1]!.trim(), number: Number(m[2]), total: Number(m[3]), title: m[4]!.trim() };
}

/** The diff part of a patch mail: from the first "diff --git" (or "--- a/") line on. */
export function diffOf(body: string): string {
  const lines = body.split('\n');
  const start = lines.findIndex((l) => l.startsWith('diff --git ') || l.startsWith('Index: '));
  if (start < 0) return '';
  return lines.slice(start).join('\n');
}

/** The commit message part: everything before the "---" separator line. */
export function commitMessageOf(body: string): string {
  const lines = body.split('\n');
  const sep = lines.findIndex((l) => l === '---');
  return (sep >= 0 ? lines.slice(0, sep) : lines).join('\n').trim() + '\n';
}

/** Changed lines of a diff: "+x"/"-x" lines, without file headers. */
export function changedLines(diff: string): { added: string[]; removed: string[] } {
  const added: string[] = [];
  const removed: string[] = [];
  for (const l of diff.split('\n')) {
    if (l.startsWith('+++ ') || l.startsWith('--- ')) continue;
    if (l.startsWith('+')) added.push(l.slice(1));
    else if (l.startsWith('-')) removed.push(l.slice(1));
  }
  return { added, removed };
}

/** Files and hunk counts touched by a diff. */
export function diffFiles(diff: string): Array<{ file: string; hunks: number }> {
  const out: Array<{ file: string; hunks: number }> = [];
  for (const l of diff.split('\n')) {
    const m = /^diff --git a\/(\S+) b\/(\S+)/.exec(l);
    if (m) out.push({ file: m[2]!, hunks: 0 });
    else if (l.startsWith('@@ ') && out.length) out[out.length - 1]!.hunks++;
  }
  return out;
}
