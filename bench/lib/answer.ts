// What SIPp's `[last_Via:] [last_From:] [last_To:] [last_Call-ID:] [last_CSeq:]` makes of a request: the 200 OK the
// bench peers (bench/engine.ts, bench/fanout.ts) send back to every NOTIFY, so they answer as the sipp watchers do.

/** The whole header line `Name: value` of the first header called name (case-insensitive), or ''. */
export function headerLine(text: string, name: string): string {
  const m = new RegExp(`^${name}:.*$`, 'im').exec(text);
  return m ? m[0] : '';
}

/** A 200 OK to the request in `text`, with our Contact. */
export function sippLike200(text: string, contact: string): string {
  return `SIP/2.0 200 OK\r\n${headerLine(text, 'Via')}\r\n${headerLine(text, 'From')}\r\n${headerLine(text, 'To')}\r\n`
    + `${headerLine(text, 'Call-ID')}\r\n${headerLine(text, 'CSeq')}\r\nContact: ${contact}\r\nContent-Length: 0\r\n\r\n`;
}
